"""Helpers for the state / checkpoint / interop tests: backend-pair targets, training, raw file surgery."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

import portable_nn as pnn
from portable_nn import _backend
from portable_nn.testing import random_array, to_numpy
from portable_nn.testing.matrix import combinations


def parametrize_targets(metafunc: pytest.Metafunc) -> None:
    """Parametrize a ``target`` argument over every selected backend × device (the "B" of an A -> B pair).

    Follows the plugin's ``--backends/--devices`` selection; combinations that cannot run here
    (no GPU, backend missing) are skipped with their reason.
    """
    if "target" not in metafunc.fixturenames:
        return
    selection = metafunc.config._pnn_selection  # type: ignore[attr-defined]
    params = [
        pytest.param(c, id=f"to-{c.id}", marks=[pytest.mark.skip(reason=c.reason)] if c.reason else [])
        for c in combinations(selection, with_dtype=False, with_device=True)
    ]
    metafunc.parametrize("target", params)


def target_namespace_device(target: Any) -> tuple[Any, Any]:
    """The namespace and native device of a ``target`` combination."""
    xp = _backend.resolve_namespace(target.backend)
    return xp, _backend.resolve_device(xp, target.device)


def has_dtype(xp: Any, device: Any, name: str) -> bool:
    return name in _backend.supported_dtypes(xp, device)


def trained_layer(xp: Any, device: Any, dtype: Any, bias: bool = True) -> tuple[pnn.Linear, np.ndarray]:
    """A Linear(4, 3) after three SGD steps on a squared loss, then one more forward/backward (grads kept).

    Returns the layer and the host float64 copy of its training input (exact values of the backend array).
    """
    layer = pnn.Linear(4, 3, bias, xp=xp, device=device, dtype=dtype, seed=0)
    x, x64 = random_array(xp, (6, 4), device=device, dtype=dtype, seed=1)
    for _ in range(3):
        layer.zero_grad()
        layer.backward(layer(x))  # dL/dy = y for L = |y|^2 / 2
        layer.step(0.1)
    layer.zero_grad()
    layer.backward(layer(x))
    return layer, x64


def host_bytes(array: Any) -> bytes:
    """The host bytes of an array (bfloat16 comes back as exactly-representable float32)."""
    return to_numpy(array).tobytes()


def assert_same_outputs(y_target: Any, y_source: Any, same_backend: bool) -> None:
    """Bitwise equal when one backend computed both; else equal within the dtype's tolerance.

    Different libraries call different matmul kernels (summation order, FMA), so only the
    parameters (checked bitwise elsewhere) are guaranteed identical across backends.
    """
    from portable_nn.testing import assert_close

    if same_backend:
        assert host_bytes(y_target) == host_bytes(y_source), "one backend, same bytes in: bitwise equal"
    else:
        assert_close(y_target, to_numpy(y_source).astype(np.float64))


# --------------------------------------------------------------------------- raw safetensors files


def split_file(data: bytes) -> tuple[dict[str, Any], bytes]:
    """(header dict, data bytes) of a safetensors file, parsed here independently of portable_nn."""
    size = int.from_bytes(data[:8], "little")
    return json.loads(data[8 : 8 + size]), data[8 + size :]


def join_file(header: dict[str, Any] | bytes, data: bytes) -> bytes:
    """A safetensors file from a header (dict, or raw bytes for malformed headers) and data bytes."""
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    return len(text).to_bytes(8, "little") + text + data


def bf16_bits(values: np.ndarray) -> bytes:
    """Little-endian bfloat16 bytes of float32 values that bfloat16 represents exactly."""
    bits = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32)
    assert not np.any(bits & 0xFFFF), "values must be exactly representable in bfloat16"
    return (bits >> 16).astype("<u2").tobytes()
