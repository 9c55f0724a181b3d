"""The documentation: the site builds in strict mode, and every code block of README.md and docs/ runs as written.

Blocks are fenced at column 0. What happens to a block depends on its language and on an HTML comment on the
nearest non-blank line above it:

- ```` ```python ````: the page's blocks run in order, in one fresh ``python`` process (cwd: a temporary
  folder), as one script; tracebacks name the page and its line. ``<!-- no-run: reason -->`` (a GPU, a cluster,
  a long run) only compiles the block; ``<!-- pytest -->`` marks a test module, run by pytest with the plugin.
- ```` ```bash ````: lines starting with ``python -m portable_nn`` or ``portable-nn`` run (unless the block is
  marked no-run); the whole block is checked with ``bash -n``.
- Other languages (``text`` output, ...) are not checked.
"""

from __future__ import annotations

import doctest
import importlib
import importlib.util
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = ["README.md", *sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").rglob("*.md"))]
#: Commands of bash blocks that run; anything else (pip install, pytest on the repository) is only parsed.
RUN_PREFIXES = ("python -m portable_nn", "portable-nn")
#: Backends for ``<!-- pytest -->`` blocks: one per kind (eager NumPy, torch, device-strict) keeps them quick.
PYTEST_BACKENDS = "numpy,torch,array_api_strict"
TIMEOUT_S = 180

#: Modules whose docstrings the API reference renders (and portable_nn.distributed, the API of the Dask guide):
#: their ``>>>`` examples run too.
REFERENCE_MODULES = [
    "portable_nn.nn.activations",
    "portable_nn.backends",
    "portable_nn.backends.arrays",
    "portable_nn.backends.base",
    "portable_nn.backends._devices",
    "portable_nn.backends._namespace",
    "portable_nn.backends._transfer",
    "portable_nn.backends.generic_backend",
    "portable_nn.backends.registry",
    "portable_nn.nn.clip_grad",
    "portable_nn.nn.dropout",
    "portable_nn.nn.batchnorm",
    "portable_nn.nn.layernorm",
    "portable_nn.nn.embedding",
    "portable_nn.nn.buffers",
    "portable_nn.nn._module_buffers",
    "portable_nn.distributed",
    "portable_nn.distributed._data",
    "portable_nn.distributed._scheduler",
    "portable_nn.distributed._training",
    "portable_nn.errors",
    "portable_nn.functional",
    "portable_nn.training.functional_model",
    "portable_nn.nn.grad_mode",
    "portable_nn.init",
    "portable_nn.init._parameter_inits",
    "portable_nn.init._placeholder",
    "portable_nn.init._presets",
    "portable_nn.init._rng_and_fans",
    "portable_nn.io",
    "portable_nn.io.model_files",
    "portable_nn.io.optimizer_files",
    "portable_nn.io.state_files",
    "portable_nn.nn.linear",
    "portable_nn.losses",
    "portable_nn.losses.bce",
    "portable_nn.losses.cross_entropy",
    "portable_nn.losses.regression",
    "portable_nn.lr_scheduler",
    "portable_nn.lr_scheduler.basic",
    "portable_nn.lr_scheduler.plateau",
    "portable_nn.lr_scheduler.sequential",
    "portable_nn.nn.module",
    "portable_nn.nn._module_state",
    "portable_nn.nn._module_params",
    "portable_nn.io.onnx_export",
    "portable_nn.optim",
    "portable_nn.optim._compiled_step",
    "portable_nn.optim._core",
    "portable_nn.optim._pure_form",
    "portable_nn.optim.adagrad",
    "portable_nn.optim.adam",
    "portable_nn.optim.base",
    "portable_nn.optim.rmsprop",
    "portable_nn.optim.sgd",
    "portable_nn.io.registry",
    "portable_nn.nn.rng",
    "portable_nn.nn.scatter",
    "portable_nn.nn.sequential",
    "portable_nn.nn._sequential_routing",
    "portable_nn.sklearn",
    "portable_nn.sklearn._estimators",
    "portable_nn.testing.arrays",
    "portable_nn.testing.assertions",
    "portable_nn.testing.gradcheck",
    "portable_nn.testing.plugin",
    "portable_nn.testing.strategies",
    "portable_nn.testing.tolerances",
    "portable_nn.training.step",
    "portable_nn.training",
    "portable_nn.typing",
]

_FENCE = re.compile(r"^```(\w*)\s*$")
_MARKER = re.compile(r"^<!--\s*(no-run|pytest)\s*(?::\s*(.*?))?\s*-->\s*$")


@dataclass(frozen=True)
class Block:
    """One fenced code block: its language, the page line of its opening fence, its code and its marker."""

    lang: str
    line: int
    code: str
    marker: str | None = None
    reason: str = ""


def parse_blocks(text: str) -> list[Block]:
    """The column-0 fenced blocks of a markdown text, with the ``<!-- ... -->`` marker just above each."""
    blocks: list[Block] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        start = i
        end = next((j for j in range(i + 1, len(lines)) if lines[j].rstrip() == "```"), None)
        assert end is not None, f"line {start + 1}: unclosed code fence"
        above = next((lines[j].strip() for j in range(start - 1, -1, -1) if lines[j].strip()), "")
        marker = _MARKER.match(above)
        blocks.append(
            Block(
                lang=match.group(1),
                line=start + 1,
                code="\n".join(lines[start + 1 : end]) + "\n",
                marker=marker.group(1) if marker else None,
                reason=(marker.group(2) or "") if marker else "",
            )
        )
        i = end + 1
    return blocks


def _env() -> dict[str, str]:
    """The environment of a fresh user shell: this checkout first on the path, none of the test run's settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PORTABLE_NN_", "PYTEST_", "JAX_", "XLA_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    env["NO_MKDOCS_2_WARNING"] = "1"
    return env


def _run(args: list[str], cwd: Path, what: str) -> str:
    try:
        done = subprocess.run(args, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{what}: no result after {TIMEOUT_S} s")
    if done.returncode != 0:
        pytest.fail(f"{what} failed (exit status {done.returncode}):\n{done.stdout[-4000:]}\n{done.stderr[-6000:]}")
    return done.stdout


def _script(page: str, blocks: list[Block]) -> str:
    """One script that runs the blocks in order; each is compiled with the page as file name and its own lines."""
    sources = [(b.line, "\n" * b.line + b.code) for b in blocks]
    # No __main__ guard here: worker processes (Dask's nannies, multiprocessing) re-import this file as a copy
    # of the page would be, so a block that needs ``if __name__ == "__main__":`` fails here without it.
    return (
        f"BLOCKS = {sources!r}\n"
        "for line, code in BLOCKS:\n"
        f'    print(f"--- {page}:{{line}}", flush=True)\n'
        f"    exec(compile(code, {page!r}, 'exec'), globals())\n"
    )


def test_parse_blocks_reads_markers_languages_and_lines() -> None:
    text = "x\n```python\na = 1\n```\n\n<!-- no-run: needs a GPU -->\n\n```bash\npip install x\n```\n```text\n```\n"
    assert parse_blocks(text) == [
        Block("python", 2, "a = 1\n"),
        Block("bash", 8, "pip install x\n", "no-run", "needs a GPU"),
        Block("text", 11, "\n"),
    ]


def test_every_page_is_checked() -> None:
    assert "README.md" in PAGES and "docs/index.md" in PAGES and "docs/guide/training.md" in PAGES
    assert all(p == "README.md" or p.startswith("docs/") for p in PAGES)


@pytest.mark.skipif(
    importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("mkdocstrings") is None,
    reason="mkdocs or mkdocstrings is not installed (pip install -e '.[test]' installs them)",
)
def test_site_builds_in_strict_mode(tmp_path: Path) -> None:
    """A broken link, anchor, page outside the nav or unresolvable ``:::`` reference fails the build."""
    site = tmp_path / "site"
    _run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"), "-d", str(site)],
        ROOT,
        "mkdocs build --strict",
    )
    assert (site / "index.html").is_file() and (site / "reference" / "linear" / "index.html").is_file()


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES)
def test_code_blocks_run_as_written(page: str, tmp_path: Path) -> None:
    blocks = parse_blocks((ROOT / page).read_text(encoding="utf-8"))
    for block in blocks:
        if block.marker == "no-run":
            assert block.reason, f"{page}:{block.line}: <!-- no-run: ... --> needs a reason"
        if block.marker == "pytest":
            assert block.lang == "python", f"{page}:{block.line}: <!-- pytest --> marks python blocks only"
    python = [b for b in blocks if b.lang == "python"]
    for block in python:  # syntax of every block, marked or not
        compile("\n" * block.line + block.code, page, "exec")
    runnable = [b for b in python if b.marker is None]
    if runnable:
        (tmp_path / "page_blocks.py").write_text(_script(page, runnable), encoding="utf-8")
        _run([sys.executable, "page_blocks.py"], tmp_path, f"python blocks of {page}")
    for block in (b for b in python if b.marker == "pytest"):
        test_file = tmp_path / f"test_block_line_{block.line}.py"
        test_file.write_text("\n" * block.line + block.code, encoding="utf-8")
        out = _run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:randomly",
                "-p",
                "no:cacheprovider",
                f"--backends={PYTEST_BACKENDS}",
                test_file.name,
            ],
            tmp_path,
            f"pytest block {page}:{block.line}",
        )
        assert re.search(r"\b[1-9]\d* passed", out), f"{page}:{block.line}: no test ran:\n{out}"
    for block in (b for b in blocks if b.lang == "bash"):
        _run(["bash", "-n", "-c", block.code], tmp_path, f"bash -n of {page}:{block.line}")
        if block.marker == "no-run":
            continue
        for offset, command in enumerate(block.code.splitlines(), start=1):
            if command.startswith(RUN_PREFIXES):
                if command.startswith("portable-nn"):  # the installed script may be another checkout's
                    command = "python -m portable_nn" + command[len("portable-nn") :]
                _run(["bash", "-c", command], tmp_path, f"{page}:{block.line + offset}: {command}")


_LINK = re.compile(r"\]\(([^)\s]+)\)")


def test_readme_is_a_landing_page() -> None:
    """README.md stays a landing page (details live in docs/) and shows CI's exact set-up and test commands."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.encode("utf-8")) <= 10_240, "README.md is over 10 KB: move the details to a docs/ page"
    for command in ('pip install -c constraints-ci.txt -e ".[test]"', "python -m pytest --hypothesis-profile=ci"):
        assert command in text, f"README.md no longer shows {command!r}"


@pytest.mark.parametrize("page", ["README.md"])
def test_landing_page_links_exist(page: str) -> None:
    """Relative links of the README (a landing page at the repository root, read on GitHub) name existing files."""
    text = re.sub(r"(?ms)^```.*?^```", "", (ROOT / page).read_text(encoding="utf-8"))
    links = [link.split("#")[0] for link in _LINK.findall(text) if not re.match(r"[a-z]+:|#", link)]
    missing = [link for link in links if not (ROOT / link).exists()]
    assert links and not missing, f"{page}: links to missing files: {missing}"


def test_docstring_examples_run() -> None:
    """The ``>>>`` examples of the modules the API reference renders (doctest prints any failure)."""
    pytest.importorskip("hypothesis", reason="portable_nn.testing.strategies needs hypothesis")
    failed, attempted = [], 0
    for name in REFERENCE_MODULES:
        result = doctest.testmod(
            importlib.import_module(name), optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
        )
        attempted += result.attempted
        if result.failed:
            failed.append(f"{name}: {result.failed} of {result.attempted}")
    assert not failed, f"docstring examples failed (doctest's report is in the captured stdout): {failed}"
    assert attempted > 0
