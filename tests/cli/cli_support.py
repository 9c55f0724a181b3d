"""Shared helpers of the command-line tests: run ``portable_nn.cli.main`` in-process or as ``python -m``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from portable_nn import cli

ROOT = Path(__file__).resolve().parents[2]
#: A run of a few seconds: small data, two epochs, no live progress bars.
TINY = ["--samples", "60", "--epochs", "2", "--batch-size", "16", "--progress", "never", "--device", "cpu"]


def run_cli(capsys: Any, *argv: str) -> tuple[int, str, str]:
    """``cli.main(argv)`` in this process: (exit status, stdout, stderr)."""
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def run_module(*argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``python -m portable_nn argv`` in a subprocess without a terminal; ``timeout`` turns a hang into a failure."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "portable_nn", *argv], capture_output=True, text=True, env=env, timeout=timeout
    )


def assert_one_line_error(code: int, err: str, match: str) -> None:
    """Exit status 2 and exactly one ``portable-nn: error: ...`` line containing ``match`` on stderr."""
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("portable-nn: error: ") and match in lines[0], lines[0]
    assert "Traceback" not in err
