"""Host-side seeded initializers: parameters are drawn with NumPy, then moved to the backend.

Drawing on the host (float64, cast on the host to the target dtype) gives bit-identical
parameters for one seed on every backend and device.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from .errors import ArgumentError, ArgumentTypeError, ShapeError

__all__ = ["INITIALIZERS", "Initializer", "glorot_uniform", "initial_parameters", "make_rng", "torch_default", "zeros"]

#: ``init(rng, in_features, out_features) -> (weight (out, in), bias (out,))`` as host arrays.
Initializer = Callable[[np.random.Generator, int, int], tuple[np.ndarray, np.ndarray]]
Seed = int | np.random.Generator | None


def make_rng(seed: Seed) -> np.random.Generator:
    """A NumPy Generator from an int seed, a Generator (used as is) or None (fresh entropy)."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None or (isinstance(seed, (int, np.integer)) and not isinstance(seed, bool)):
        return np.random.default_rng(seed)
    raise ArgumentTypeError(f"seed must be an int, a numpy.random.Generator or None, got {type(seed).__name__}")


def _uniform(rng: np.random.Generator, bound: float, shape: tuple[int, ...]) -> np.ndarray:
    return rng.uniform(-bound, bound, size=shape) if bound > 0 else np.zeros(shape)


def torch_default(rng: np.random.Generator, in_features: int, out_features: int) -> tuple[np.ndarray, np.ndarray]:
    """PyTorch's ``nn.Linear`` init: weight and bias ~ U(-1/sqrt(in), 1/sqrt(in))."""
    bound = 1.0 / math.sqrt(in_features) if in_features > 0 else 0.0
    weight = _uniform(rng, bound, (out_features, in_features))
    return weight, _uniform(rng, bound, (out_features,))


def glorot_uniform(rng: np.random.Generator, in_features: int, out_features: int) -> tuple[np.ndarray, np.ndarray]:
    """Glorot/Xavier uniform weight ~ U(±sqrt(6 / (in + out))), zero bias (Keras ``Dense`` default)."""
    fan = in_features + out_features
    bound = math.sqrt(6.0 / fan) if fan > 0 else 0.0
    return _uniform(rng, bound, (out_features, in_features)), np.zeros((out_features,))


def zeros(rng: np.random.Generator, in_features: int, out_features: int) -> tuple[np.ndarray, np.ndarray]:
    """All-zero weight and bias."""
    return np.zeros((out_features, in_features)), np.zeros((out_features,))


INITIALIZERS: dict[str, Initializer] = {"torch": torch_default, "glorot_uniform": glorot_uniform, "zeros": zeros}


def initial_parameters(
    init: str | Initializer, in_features: int, out_features: int, seed: Seed
) -> tuple[np.ndarray, np.ndarray]:
    """Host float64 ``(weight (out, in), bias (out,))`` drawn by ``init`` from ``seed``."""
    if isinstance(init, str):
        if init not in INITIALIZERS:
            raise ArgumentError(f"unknown init {init!r}; known: {sorted(INITIALIZERS)} or a callable")
        init = INITIALIZERS[init]
    weight, bias = init(make_rng(seed), in_features, out_features)
    weight, bias = np.asarray(weight, dtype=np.float64), np.asarray(bias, dtype=np.float64)
    if weight.shape != (out_features, in_features) or bias.shape != (out_features,):
        raise ShapeError(
            f"init returned weight {weight.shape} and bias {bias.shape}; "
            f"expected ({out_features}, {in_features}) and ({out_features},)"
        )
    return weight, bias
