"""The types of :mod:`portable_nn.init`, its seeded generator and the gains and fans initializers scale by."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from ..errors import ArgumentError, ArgumentTypeError

Seed = int | np.random.Generator | None


class ParameterInit(Protocol):
    """``init(rng, shape, *, fan_in, fan_out) -> host array of shape``."""

    def __call__(self, rng: np.random.Generator, shape: tuple[int, ...], *, fan_in: int, fan_out: int) -> Any: ...


#: Linear's older pair form: ``init(rng, in_features, out_features) -> (weight (out, in), bias (out,))``.
Initializer = Callable[[np.random.Generator, int, int], tuple[np.ndarray, np.ndarray]]


def make_rng(seed: Seed) -> np.random.Generator:
    """A NumPy Generator from an int seed, a Generator (used as is) or None (fresh entropy).

    Parameters
    ----------
    seed : int, numpy.random.Generator or None
        The seed; a Generator is returned unchanged (its state is shared), None draws fresh entropy.

    Returns
    -------
    numpy.random.Generator
        The generator parameters are drawn from.

    Raises
    ------
    ArgumentTypeError
        If ``seed`` is of any other type (a bool or a float included).

    Examples
    --------
    >>> from portable_nn.init import make_rng
    >>> float(make_rng(0).uniform()) == float(make_rng(0).uniform())
    True
    """
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None or (isinstance(seed, (int, np.integer)) and not isinstance(seed, bool)):
        return np.random.default_rng(seed)
    raise ArgumentTypeError(f"seed must be an int, a numpy.random.Generator or None, got {type(seed).__name__}")


# --------------------------------------------------------------------------- gains and fans


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """``torch.nn.init.calculate_gain``: the recommended gain for a nonlinearity.

    ``linear``/``sigmoid``/convolutions 1, ``tanh`` 5/3, ``relu`` √2, ``leaky_relu`` √(2 / (1 + a²))
    with negative slope ``param`` (default 0.01), ``selu`` 3/4.

    Parameters
    ----------
    nonlinearity : str
        ``"linear"``, ``"identity"``, ``"sigmoid"``, ``"conv1d"``/``"conv2d"``/``"conv3d"``, ``"tanh"``,
        ``"relu"``, ``"leaky_relu"`` or ``"selu"``.
    param : float, optional
        The negative slope of ``"leaky_relu"`` (default 0.01); ignored by the others.

    Returns
    -------
    float
        The gain.

    Raises
    ------
    ArgumentTypeError
        If the slope of ``"leaky_relu"`` is not a number.
    ArgumentError
        If ``nonlinearity`` is not one of the names above.

    Examples
    --------
    >>> from portable_nn.init import calculate_gain
    >>> calculate_gain("tanh"), calculate_gain("linear")
    (1.6666666666666667, 1.0)
    """
    if nonlinearity in ("linear", "identity", "sigmoid", "conv1d", "conv2d", "conv3d"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        if isinstance(slope, bool) or not isinstance(slope, (int, float)):
            raise ArgumentTypeError(f"negative_slope must be a number, got {type(slope).__name__}")
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ArgumentError(
        f"unsupported nonlinearity {nonlinearity!r}; known: linear, sigmoid, tanh, relu, leaky_relu, selu"
    )


def default_fans(shape: Sequence[int]) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a parameter shape, as torch computes them.

    2-D and more: ``fan_in = shape[1] * receptive``, ``fan_out = shape[0] * receptive`` with
    ``receptive = prod(shape[2:])`` ((out, in) weights, (out, in, k...) kernels). 1-D: both are
    ``shape[0]``; 0-D: both 1. Pass ``fan_in``/``fan_out`` to ``add_parameter`` to override
    (a bias takes its weight's ``fan_in``).

    Parameters
    ----------
    shape : sequence of int
        The parameter's shape.

    Returns
    -------
    tuple of (int, int)
        ``(fan_in, fan_out)``.

    Examples
    --------
    >>> from portable_nn.init import default_fans
    >>> default_fans((4, 3)), default_fans((8, 3, 5, 5)), default_fans((4,))
    ((3, 4), (75, 200), (4, 4))
    """
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive
