"""What a run records about its machine (CPU, BLAS, threads, load) and the thread limit it applies."""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import platform
import sys
from typing import Any

from portable_nn import __version__


class ThreadLimitError(RuntimeError):
    """The one-thread method cannot be applied here (threadpoolctl is missing)."""


def threadpoolctl_available() -> bool:
    """Whether ``threadpoolctl`` imports (it limits BLAS/OpenMP thread pools; ``pip install -e '.[bench]'``)."""
    try:
        importlib.import_module("threadpoolctl")
    except ImportError:
        return False
    return True


def limit_threads(n: int) -> None:
    """Run torch and every BLAS/OpenMP pool on ``n`` threads for the rest of the process.

    Raises :class:`ThreadLimitError` when ``threadpoolctl`` is missing: the BLAS limit is half of the method
    (see benchmarks/README.md), so a run without it would not be what it says.
    """
    try:
        threadpoolctl = importlib.import_module("threadpoolctl")
    except ImportError as exc:
        raise ThreadLimitError(
            f"--threads {n} needs threadpoolctl to limit the BLAS threads, and it is not installed "
            "(pip install -e '.[bench]'); pass --threads 0 to keep the libraries' own thread counts"
        ) from exc
    with contextlib.suppress(ImportError):
        importlib.import_module("torch").set_num_threads(n)
    threadpoolctl.threadpool_limits(n)


def versions() -> dict[str, str]:
    found = {"python": platform.python_version(), "portable_nn": __version__}
    for name in ("numpy", "torch", "jax", "jaxlib", "cupy", "array_api_compat", "array_api_strict"):
        module = sys.modules.get(name)
        if module is None and importlib.util.find_spec(name) is not None and name in ("numpy", "array_api_compat"):
            module = importlib.import_module(name)
        if module is not None:
            found[name] = getattr(module, "__version__", "?")
    return found


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as info:
        cpu = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), cpu)
    blas: list[dict[str, Any]] = []
    with contextlib.suppress(ImportError):  # optional tooling: which BLAS kernel numpy (and torch) run
        threadpoolctl = importlib.import_module("threadpoolctl")
        blas = [
            {k: info.get(k) for k in ("internal_api", "version", "architecture", "num_threads", "prefix")}
            for info in threadpoolctl.threadpool_info()
        ]
    torch = sys.modules.get("torch")
    env_names = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "platform": platform.platform(terse=True),
        "blas": blas,
        "torch_threads": torch.get_num_threads() if torch else None,
        "env": {k: os.environ[k] for k in env_names if k in os.environ},
        "load_start": ", ".join(f"{x:.2f}" for x in os.getloadavg()),
    }
