"""The pytest plugin (registered as ``portable_nn`` through the ``pytest11`` entry point).

Any test that asks for the fixtures ``xp``, ``device`` or ``dtype`` runs once per backend
(× device if it asks for ``device``, × dtype if it asks for ``dtype``). Combinations that
cannot run here are skipped with the reason in the output, never dropped. At the end of the
run a backend × device × dtype matrix of outcomes is printed (and written as JSON with
``--backend-report=PATH``, checked before the run; the space form is refused). The dtypes are
float32 and float64 unless selected otherwise. A name given twice counts once; a selection that
could only skip (a device no selected backend could have, such as ``nosuch``, ``CPU`` or
``cuda:-1``; dtypes none of the selected devices running here has) is a usage error.

Selection, highest precedence first: ``--backends/--devices/--dtypes``, the environment
variables ``PORTABLE_NN_BACKENDS/_DEVICES/_DTYPES``, the ini keys ``pnn_backends``,
``pnn_devices``, ``pnn_dtypes``. Backends may pin a device: ``--backends torch:cuda,numpy``.

Markers:

- ``@pytest.mark.backends(only=[...], exclude=[...], xfail=[...], reason="...")``: select backends (entries
  ``"torch"`` or ``"torch:cuda"``);
- ``@pytest.mark.requires_float64``: skip on devices without float64;
- ``@pytest.mark.eager``: skip on lazy backends such as Dask;
- ``@pytest.mark.third_party``: run on the third-party tier and registered backends (marray, ndonnx, sparse,
  cubed...) instead of the built-in ones; other tests run on those only when ``--backends`` names them.
"""

from __future__ import annotations

import json
import os
from collections import Counter, defaultdict
from typing import Any

import pytest

from .._backend import resolve_device, resolve_dtype, resolve_namespace, supported_dtypes
from ..backends import get_adapter
from ..errors import PortableNNError
from .matrix import Combination, Selection, check_selection, combinations, device_matches

_COMBO = "_pnn_combo"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("portable_nn", "portable_nn backend matrix")
    group.addoption("--backends", default=None, help="comma list of backends (torch, torch:cuda, ...); default: all")
    group.addoption("--devices", default=None, help="comma list of devices (cpu, cuda, cuda:1, device1, ...)")
    group.addoption("--dtypes", default=None, help="comma list of floating dtypes; default: float32,float64")
    group.addoption(
        "--backend-report", default=None, metavar="PATH", help="write the backend matrix as JSON: --backend-report=PATH"
    )
    parser.addini("pnn_backends", "default --backends", default=None)
    parser.addini("pnn_devices", "default --devices", default=None)
    parser.addini("pnn_dtypes", "default --dtypes", default=None)
    parser.addini("pnn_jax_cpu_devices", "number of JAX CPU devices to create (sets XLA_FLAGS)", default=None)
    parser.addini("pnn_jax_enable_x64", "enable float64 in JAX (sets JAX_ENABLE_X64)", type="bool", default=False)


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser, args: list[str]) -> None:
    """Configure JAX (host device count, float64) before any conftest can import it."""
    source = "PORTABLE_NN_JAX_CPU_DEVICES"
    count = os.environ.get(source)
    if count is None:
        source, count = "the ini key pnn_jax_cpu_devices", early_config.getini("pnn_jax_cpu_devices")
    flags = os.environ.get("XLA_FLAGS", "")
    if count is not None and str(count) != "" and "xla_force_host_platform_device_count" not in flags:
        text = str(count).strip()
        if not (text.isascii() and text.isdigit()) or int(text) < 1:
            raise pytest.UsageError(
                f"{source} must be a positive integer (the number of JAX CPU devices), got {str(count)!r}"
            )
        os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={int(text)}".strip()
    if early_config.getini("pnn_jax_enable_x64"):
        os.environ.setdefault("JAX_ENABLE_X64", "1")


def _setting(config: pytest.Config, option: str, env: str, ini: str) -> str | None:
    value = config.getoption(option)
    if value is None:
        value = os.environ.get(env)
    if value is None:
        ini_value = config.getini(ini)
        value = str(ini_value) if ini_value else None
    return None if value is None else str(value)


def _refuse_values_taken_for_test_paths(config: pytest.Config) -> None:
    """Refuse ``--backend-report out.json`` (space form): pytest picks its rootdir before it knows this plugin's
    options, so once ``out.json`` exists it counts as a test path, moves the rootdir and loses pyproject's settings."""
    args = list(config.invocation_params.args)
    for i, arg in enumerate(args[:-1]):
        if arg == "--backend-report":
            raise pytest.UsageError(
                f"write --backend-report={args[i + 1]} (with '='): in the form '--backend-report {args[i + 1]}' "
                "pytest takes the path for a test path while it looks for its rootdir and configuration file"
            )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "backends(only=None, exclude=None, xfail=None, reason=''): select backends")
    config.addinivalue_line("markers", "requires_float64: skip on devices without float64")
    config.addinivalue_line("markers", "eager: needs eager execution; skipped on lazy backends (dask)")
    config.addinivalue_line("markers", "third_party: runs on the third-party tier and registered backends")
    _refuse_values_taken_for_test_paths(config)
    try:
        config._pnn_selection = Selection.parse(  # type: ignore[attr-defined]
            _setting(config, "--backends", "PORTABLE_NN_BACKENDS", "pnn_backends"),
            _setting(config, "--devices", "PORTABLE_NN_DEVICES", "pnn_devices"),
            _setting(config, "--dtypes", "PORTABLE_NN_DTYPES", "pnn_dtypes"),
        )
        selection: Selection = config._pnn_selection  # type: ignore[attr-defined]
        if selection.devices or selection.dtypes or any(":" in b for b in selection.backends or ()):
            check_selection(selection)  # imports the selected backends: only when devices/dtypes are chosen
    except PortableNNError as exc:
        raise pytest.UsageError(str(exc)) from None
    _check_report_path(config)
    config._pnn_report = MatrixReport(config._pnn_selection)  # type: ignore[attr-defined]
    config.pluginmanager.register(config._pnn_report, "portable_nn_matrix_report")  # type: ignore[attr-defined]


def _check_report_path(config: pytest.Config) -> None:
    """``--backend-report=PATH`` must be writable before the run starts (not found out after it, losing the report)."""
    path = config.getoption("--backend-report")
    if not path:
        return
    target = config.invocation_params.dir / path
    parent = target.parent
    problem = None
    if str(path).endswith(("/", os.sep)) or target.is_dir():
        problem = "is a directory, expected a file path"
    elif not parent.is_dir():
        problem = f"the folder {str(parent)!r} does not exist"
    elif target.exists() and not target.is_file():
        problem = "exists and is not a regular file"
    elif not os.access(target if target.exists() else parent, os.W_OK):
        problem = "cannot be written (permission denied)"
    if problem:
        raise pytest.UsageError(f"--backend-report={path}: {problem}")


def _matches(entries: Any, combo: Combination) -> bool:
    """Whether a marker's ``"torch"`` / ``"torch:cuda"`` entries name this combination."""
    if isinstance(entries, str):
        entries = [entries]
    for entry in entries or ():
        name, _, wanted = entry.partition(":")
        if name == combo.backend and (not wanted or device_matches(wanted, combo.device)):
            return True
    return False


def _listing(entries: Any) -> str:
    return entries if isinstance(entries, str) else ", ".join(entries)


def _marks_for(metafunc: pytest.Metafunc, combo: Combination) -> list[pytest.MarkDecorator]:
    if combo.reason is not None:
        return [pytest.mark.skip(reason=combo.reason)]
    for mark in metafunc.definition.iter_markers("backends"):
        reason = mark.kwargs.get("reason", "")
        only, exclude = mark.kwargs.get("only"), mark.kwargs.get("exclude")
        why = f" ({reason})" if reason else ""
        if only is not None and not _matches(only, combo):
            return [pytest.mark.skip(reason=f"{combo.backend}: test runs only on {_listing(only)}{why}")]
        if exclude is not None and _matches(exclude, combo):
            return [pytest.mark.skip(reason=f"{combo.backend}: excluded{why}")]
        if _matches(mark.kwargs.get("xfail"), combo):
            return [pytest.mark.xfail(reason=f"{combo.backend}: {reason or 'expected failure'}", strict=True)]
    if get_adapter(combo.backend).lazy and metafunc.definition.get_closest_marker("eager"):
        return [pytest.mark.skip(reason=f"{combo.backend}: lazy, skipped eager-only test")]
    if metafunc.definition.get_closest_marker("requires_float64"):
        xp = resolve_namespace(combo.backend)
        if "float64" not in supported_dtypes(xp, resolve_device(xp, combo.device)):
            return [pytest.mark.skip(reason=f"{combo.backend} on {combo.device} has no float64")]
    return []


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if _COMBO not in metafunc.fixturenames:
        return
    selection: Selection = metafunc.config._pnn_selection  # type: ignore[attr-defined]
    if metafunc.definition.get_closest_marker("third_party"):
        selection = selection.third_party()
    combos = combinations(
        selection,
        with_dtype=bool({"dtype", "dtype_name"} & set(metafunc.fixturenames)),
        with_device="device" in metafunc.fixturenames,
    )
    params = [pytest.param(c, id=c.id, marks=_marks_for(metafunc, c)) for c in combos]
    metafunc.parametrize(_COMBO, params, indirect=True, scope="function")


@pytest.fixture
def _pnn_combo(request: pytest.FixtureRequest) -> Combination:
    combo: Combination = request.param
    return combo


@pytest.fixture
def backend(_pnn_combo: Combination) -> str:
    """The backend name of this test's combination (``"numpy"``, ``"torch"``, ...)."""
    return _pnn_combo.backend


@pytest.fixture
def xp(_pnn_combo: Combination) -> Any:
    """The array-API namespace of this test's backend."""
    return resolve_namespace(_pnn_combo.backend)


@pytest.fixture
def device(xp: Any, _pnn_combo: Combination) -> Any:
    """The backend's device object of this test's combination."""
    return resolve_device(xp, _pnn_combo.device)


@pytest.fixture
def dtype(xp: Any, _pnn_combo: Combination) -> Any:
    """The backend's floating dtype object of this test's combination."""
    return resolve_dtype(xp, _pnn_combo.dtype)


@pytest.fixture
def dtype_name(_pnn_combo: Combination) -> str | None:
    """The portable dtype name of this test's combination (``"float32"``...; None for dtype-free tests)."""
    return _pnn_combo.dtype


_OUTCOMES = ("passed", "failed", "error", "skipped", "xfailed", "xpassed")


class MatrixReport:
    """Counts outcomes per combination; prints the matrix at the end and writes it as JSON on request."""

    def __init__(self, selection: Selection) -> None:
        self.selection = selection
        self.combo_of: dict[str, Combination] = {}
        self.outcomes: dict[Combination, Counter[str]] = defaultdict(Counter)
        self.skip_reasons: dict[Combination, Counter[str]] = defaultdict(Counter)
        self.xfail_reasons: dict[Combination, Counter[str]] = defaultdict(Counter)
        self.write_error: str | None = None

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        for item in items:
            callspec = getattr(item, "callspec", None)
            if callspec is not None and isinstance(callspec.params.get(_COMBO), Combination):  # not an empty set
                self.combo_of[item.nodeid] = callspec.params[_COMBO]

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        combo = self.combo_of.get(report.nodeid)
        if combo is None:
            return
        if report.when == "call" or (report.when == "setup" and not report.passed):
            if hasattr(report, "wasxfail"):
                outcome = "xfailed" if report.skipped else "xpassed"
                if report.skipped:
                    self.xfail_reasons[combo][report.wasxfail.removeprefix("reason: ")] += 1
            elif report.skipped:
                outcome = "skipped"
                longrepr = report.longrepr
                reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
                # A combination that cannot run here is the row's reason, whatever other skip mark (e.g. the
                # other side of a backend pair) pytest happened to report.
                self.skip_reasons[combo][combo.reason or reason.removeprefix("Skipped: ")] += 1
            else:
                outcome = report.outcome if report.when == "call" else "error"
            self.outcomes[combo][outcome] += 1
        elif report.when == "teardown" and report.failed:
            self.outcomes[combo]["error"] += 1

    def rows(self) -> list[dict[str, Any]]:
        """One dict per combination that ran tests: counts of each outcome and the skip/xfail reasons."""
        ordered = sorted(self.outcomes, key=lambda c: (c.backend, c.device, c.dtype or ""))
        return [
            {
                "backend": c.backend,
                "device": c.device,
                "dtype": c.dtype,
                **{k: self.outcomes[c][k] for k in _OUTCOMES},
                "skip_reasons": dict(self.skip_reasons[c]),
                "xfail_reasons": dict(self.xfail_reasons[c]),
            }
            for c in ordered
        ]

    def as_json(self) -> dict[str, Any]:
        rows = self.rows()
        sel = self.selection
        return {
            "selection": {
                "backends": list(sel.backends) if sel.backends else "all",
                "devices": list(sel.devices) if sel.devices else "default",
                "dtypes": list(sel.dtypes) if sel.dtypes else "default",
            },
            "combinations": rows,
            "totals": {k: sum(row[k] for row in rows) for k in _OUTCOMES},
        }

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        path = session.config.getoption("--backend-report")
        if path:
            target = session.config.invocation_params.dir / path
            try:
                target.write_text(json.dumps(self.as_json(), indent=2) + "\n", encoding="utf-8")
            except OSError as exc:  # the path was checked at the start; the folder may have gone since
                self.write_error = f"{exc.strerror or exc}"

    def pytest_terminal_summary(self, terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
        rows = self.rows()
        if not rows:
            return
        write = terminalreporter.write_line
        terminalreporter.section("portable_nn backend matrix")
        wb = max(len("backend"), *(len(r["backend"]) for r in rows)) + 2
        wd = max(len("device"), *(len(r["device"]) for r in rows)) + 2
        write(
            f"{'backend':<{wb}}{'device':<{wd}}{'dtype':<10}{'passed':>7}{'failed':>7}"
            f"{'error':>6}{'skipped':>8}{'xfail':>6}  reasons"
        )
        for row in rows:
            reasons = "; ".join(f"{r} (x{n})" for r, n in row["skip_reasons"].items())
            write(
                f"{row['backend']:<{wb}}{row['device']:<{wd}}{row['dtype'] or '-':<10}{row['passed']:>7}"
                f"{row['failed']:>7}{row['error']:>6}{row['skipped']:>8}{row['xfailed']:>6}  {reasons}"
            )
        path = config.getoption("--backend-report")
        if path and self.write_error is not None:
            write(f"backend matrix NOT written to {config.invocation_params.dir / path}: {self.write_error}", red=True)
        elif path:
            write(f"backend matrix written to {config.invocation_params.dir / path}")
