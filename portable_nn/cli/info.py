"""``portable-nn info``: the backends installed here, their versions, devices and dtypes, and why any is unavailable."""

from __future__ import annotations

import platform
import sys

from .. import __version__
from .._backend import available_devices, device_matrix, resolve_device, resolve_namespace, supported_dtypes
from ..errors import BackendUnavailableError
from .plan import RUN_ORDER, one_line

__all__ = ["info"]


def _version(name: str) -> str:
    module = sys.modules.get(name)
    return str(getattr(module, "__version__", "?")) if module is not None else "?"


def info() -> int:
    """Print the backends installed here, their versions, devices and dtypes; returns the exit status 0."""
    import array_api_compat

    print(
        f"portable_nn {__version__} (array-api-compat {array_api_compat.__version__}, "
        f"Python {platform.python_version()}, {platform.system()} {platform.machine()})"
    )
    print()
    print(f"{'backend':<18}{'version':<14}{'devices and dtypes / why unavailable'}")
    for name in RUN_ORDER:
        try:
            xp = resolve_namespace(name)
        except BackendUnavailableError as exc:
            print(f"{name:<18}{'-':<14}unavailable: {str(exc).split('; installed backends')[0]}")
            continue
        except Exception as exc:  # installed, but its import fails
            print(f"{name:<18}{'-':<14}unavailable: {one_line(exc)}")
            continue
        parts = []
        try:
            for label, native in available_devices(xp).items():
                parts.append(f"{label} ({', '.join(supported_dtypes(xp, native))})")
            parts += [f"{label}: {reason.removeprefix(name + ': ')}" for label, reason in device_matrix(name) if reason]
        except Exception as exc:
            parts.append(f"device query failed: {one_line(exc)}")
        if name == "jax" and "float64" not in supported_dtypes(xp, resolve_device(xp, None)):
            parts.append("float64 needs JAX_ENABLE_X64=1 (train --dtype float64 sets it)")
        print(f"{name:<18}{_version(name):<14}{'; '.join(parts)}")
    return 0
