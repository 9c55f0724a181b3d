"""Reading a large checkpoint costs the tensors' size, not a copy of the file: peak RSS measured in subprocesses."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")

SIDE = 5120  # a 5120 x 5120 float32 weight: 104.9 MB
SIZE_MB = SIDE * SIDE * 4 / 1e6

WRITE = f"""
import sys, portable_nn as pnn
with pnn.init.placeholder({SIDE * SIDE}, "float32"):
    layer = pnn.Linear({SIDE}, {SIDE}, bias=False)
layer.weight[...] = 0.5  # a private array in this script
pnn.save(layer, sys.argv[1], metadata={{"run": "big"}})
"""

MEASURE = """
import os, sys
import portable_nn as pnn

def rss_mb():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6

def peak_mb():
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:")) * 1024 / 1e6

def reset_peak():
    try:  # Linux resets VmHWM (peak RSS) to the current RSS on "5" (else the import's peak may hide the read's)
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass

path, what = sys.argv[1], sys.argv[2]
pnn.load(sys.argv[3])  # warm up every code path on a small file
reset_peak()
before = rss_mb()
result = {"load_metadata": pnn.load_metadata, "load_state": pnn.load_state, "load": pnn.load}[what](path)
peak = peak_mb()
value = result["weight"] if what == "load_state" else getattr(result, "weight", None)
assert value is None or float(value[0, 0]) == 0.5
print(peak - before)
"""


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    folder = tmp_path_factory.mktemp("big")
    path, small = str(folder / "big.safetensors"), str(folder / "small.safetensors")
    subprocess.run([sys.executable, "-c", WRITE, path], check=True, timeout=300)
    subprocess.run(
        [sys.executable, "-c", "import sys, portable_nn as p; p.save(p.Linear(3, 2), sys.argv[1])", small],
        check=True,
        timeout=300,
    )
    return path, small


@pytest.mark.parametrize(
    ("what", "budget_mb"), [("load_metadata", 4), ("load_state", SIZE_MB + 8), ("load", SIZE_MB + 8)]
)
def test_peak_memory_of_reading_a_100_mb_checkpoint(big_file: tuple[str, str], what: str, budget_mb: float) -> None:
    path, small = big_file
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(MEASURE), path, what, small],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    growth = float(out.stdout.strip().splitlines()[-1])
    assert growth <= budget_mb, f"{what} grew the peak RSS by {growth:.1f} MB (budget {budget_mb:.1f} MB)"
