"""The code base stays ruff-clean and the library core stays backend-neutral."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Modules allowed to import a backend: the backend adapter, host-side NumPy modules, tooling (and the
# command line, portable_nn/cli/).
BACKEND_AWARE = {
    "_backend.py",
    "init.py",
    "io.py",
    "cluster.py",
    "__main__.py",
    "bench.py",
    "distributed.py",
    "datasets.py",
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
        and "cli" not in path.parts
        and path.name not in BACKEND_AWARE
        and pattern.search(path.read_text())
    ]
    assert offenders == [], f"only the backend adapter and host-side modules may import a backend: {offenders}"
