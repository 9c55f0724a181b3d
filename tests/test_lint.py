"""The code base stays ruff-clean and the library core stays backend-neutral."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Modules allowed to import a backend: the backend adapters (every file under backends/), host-side NumPy
# modules, tooling. The facade _backend.py delegates to the adapters and imports no backend itself.
BACKEND_AWARE_DIRS = {"backends", "cli", "sklearn"}  # the command line (portable_nn/cli/) and estimators too
BACKEND_AWARE = {
    "init.py",
    "safetensors_format.py",
    "cluster.py",
    "__main__.py",
    "distributed.py",
    "datasets.py",
    "torch_foreach.py",  # fast_paths/: backend-specific fast paths, registered by backend name
    "jax_step.py",
    "jax_eval.py",
    "jax_cache.py",
    "torch_ops.py",
    "numpy_scatter.py",
    "torch_scatter.py",
    "jax_scatter.py",
}


def test_ruff_clean():
    if shutil.which("ruff") is None and subprocess.run([sys.executable, "-m", "ruff", "--version"]).returncode:
        pytest.skip("ruff is not installed (pip install -e '.[test]' installs it)")
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", str(ROOT)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_core_imports_no_backend():
    pattern = re.compile(r"^\s*(import|from)\s+(numpy|torch|cupy|jax|dask)\b", re.MULTILINE)
    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "portable_nn").rglob("*.py")
        if "testing" not in path.parts
        and not BACKEND_AWARE_DIRS & set(path.relative_to(ROOT / "portable_nn").parts[:-1])
        and path.name not in BACKEND_AWARE
        and pattern.search(path.read_text())
    ]
    assert offenders == [], f"only the backend adapters and host-side modules may import a backend: {offenders}"


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
