"""Helpers shared by the conformance tests (the fixtures xp/device/dtype come from the plugin)."""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np

from portable_nn import Linear, Module, Sequential, Tanh
from portable_nn.testing import to_numpy


def oracle_forward(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    """float64 NumPy ``x @ weight.T + bias`` written with einsum (independent of the library's reshapes)."""
    y = np.einsum("...i,oi->...o", x, weight)
    return y if bias is None else y + bias


def oracle_backward(g: np.ndarray, x: np.ndarray, weight: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """float64 NumPy gradients: element formulas of seed 000 as einsums over all leading axes."""
    grad_x = np.einsum("...o,oi->...i", g, weight)
    rows = math.prod(x.shape[:-1])  # not -1: NumPy cannot infer it for empty arrays
    rows_g, rows_x = g.reshape(rows, weight.shape[0]), x.reshape(rows, weight.shape[1])
    grad_weight = np.einsum("no,ni->oi", rows_g, rows_x)
    grad_bias = rows_g.sum(axis=0)
    return grad_x, grad_weight, grad_bias


def host_params(layer: Linear) -> tuple[np.ndarray, np.ndarray | None]:
    """The layer's parameters as host float64."""
    bias = None if layer.bias is None else to_numpy(layer.bias).astype(np.float64)
    return to_numpy(layer.weight).astype(np.float64), bias


def _host_values(value: Any) -> list[Any]:
    """Host copies of the arrays in ``value`` (an array, None, or a tuple of arrays and shapes), in order."""
    if value is None:
        return []
    if isinstance(value, tuple):
        if all(isinstance(d, int) for d in value):  # a shape
            return [tuple(value)]
        return [part for item in value for part in _host_values(item)]
    return [to_numpy(value)]


def snapshot(layer: Linear) -> dict[str, Any]:
    """Everything a failed call must leave untouched: identities and host values of arrays and what forward kept."""
    names = ("weight", "bias", "grad_weight", "grad_bias", "_saved")
    return {name: (id(getattr(layer, name)), _host_values(getattr(layer, name))) for name in names} | {
        "_nothing_saved_because": layer._nothing_saved_because
    }


def assert_unchanged(layer: Linear, before: dict[str, Any]) -> None:
    after = snapshot(layer)
    assert after.keys() == before.keys()
    for name, value in before.items():
        if name == "_nothing_saved_because":
            assert after[name] == value
            continue
        assert after[name][0] == value[0], f"{name} was rebound by a failed call"
        assert len(after[name][1]) == len(value[1]), name
        for now, then in zip(after[name][1], value[1], strict=True):
            if isinstance(then, tuple):
                assert now == then, f"{name}: {now} != {then}"
            else:
                np.testing.assert_array_equal(now, then)


def mlp(
    sizes: tuple[int, ...],
    xp: Any = "numpy",
    device: Any = None,
    dtype: Any = "float32",
    *,
    seed: int = 1,
    activation: type[Module] = Tanh,
) -> Sequential:
    """The small MLP the tests share: ``Linear(sizes[0], sizes[1]), activation(), Linear(sizes[1], sizes[2])...``.

    The layers are seeded ``seed``, ``seed + 1``, ... and built on ``xp``/``device`` as ``dtype``.
    """
    layers: list[Module] = []
    for index, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        if layers:
            layers.append(activation())
        layers.append(Linear(n_in, n_out, xp=xp, device=device, dtype=dtype, seed=seed + index))
    return Sequential(*layers)
