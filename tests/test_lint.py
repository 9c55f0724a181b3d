"""The code base stays ruff-clean and the library core stays backend-neutral."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Which array libraries each folder of portable_nn/ may import: a rule by directory. Everything not listed (the
# package root, nn/, optim/, losses/, lr_scheduler/, training/ and any new folder) is library core: array API only.
ALL_BACKENDS = frozenset({"numpy", "torch", "cupy", "jax", "dask"})
ALLOWED_IMPORTS: dict[str, frozenset[str]] = {
    "backends": ALL_BACKENDS,  # the adapters, the one registry and each backend's fast paths
    "cli": ALL_BACKENDS,  # tooling: the command line and its demo data
    "testing": ALL_BACKENDS,  # tooling: the pytest plugin, oracles, strategies
    "distributed": frozenset({"numpy", "dask"}),  # Dask schedulers and training on a cluster
    "io": frozenset({"numpy"}),  # host-side file format (safetensors)
    "init": frozenset({"numpy"}),  # host-side seeded initializers
}
EXTRA_ALLOWED: dict[str, frozenset[str]] = {"sklearn": frozenset({"cupy", "dask", "jax", "numpy", "torch"})}


def test_ruff_clean():
    if shutil.which("ruff") is None and subprocess.run([sys.executable, "-m", "ruff", "--version"]).returncode:
        pytest.skip("ruff is not installed (pip install -e '.[test]' installs it)")
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", str(ROOT)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_core_imports_no_backend():
    pattern = re.compile(r"^\s*(?:import|from)\s+(numpy|torch|cupy|jax|dask)\b", re.MULTILINE)
    offenders = []
    for path in sorted((ROOT / "portable_nn").rglob("*.py")):
        parts = path.relative_to(ROOT / "portable_nn").parts
        allowed = ALLOWED_IMPORTS.get(parts[0], frozenset()) if len(parts) > 1 else frozenset()
        allowed = allowed | EXTRA_ALLOWED.get(parts[0], frozenset())  # a folder, or a file at the root
        used = set(pattern.findall(path.read_text()))
        if used - allowed:
            offenders.append(f"{'/'.join(parts)} imports {sorted(used - allowed)}")
    assert offenders == [], f"only backends/ and host-side folders may import an array library: {offenders}"


def test_only_adapters_name_backends_in_the_facade():
    """The facade delegates to the adapters: no ``name == "torch"``-style branches left in it."""
    text = (ROOT / "portable_nn" / "_backend.py").read_text()
    names = "numpy|torch|cupy|jax|array_api_strict|dask"
    branches = re.findall(rf"""(?:==|!=|\bin)\s*\(?\s*["'](?:{names})["']""", text)
    assert branches == [], f"backend-specific branches belong in portable_nn/backends/: {branches}"


def test_ruff_format_clean():
    if subprocess.run([sys.executable, "-m", "ruff", "--version"], capture_output=True).returncode:
        pytest.skip("ruff is not installed (pip install -e '.[test]' installs it)")
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--check", "--no-cache", str(ROOT)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_library_passes_mypy_strict():
    """The installed package type-checks under ``mypy --strict`` (configured in pyproject.toml)."""
    if subprocess.run([sys.executable, "-m", "mypy", "--version"], capture_output=True).returncode:
        pytest.skip("mypy is not installed (pip install -e '.[test]' installs it)")
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"), str(ROOT / "portable_nn")],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr
