"""The parameter initializers of :mod:`portable_nn.init` (``init(rng, shape, *, fan_in, fan_out)``) and ``draw``."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..errors import ArgumentError, ArgumentTypeError, ShapeError
from ._placeholder import _PLACEHOLDER, _placeholder_draw
from ._rng_and_fans import ParameterInit, calculate_gain, default_fans
from ._rng_and_fans import make_rng as make_rng  # the examples use it


def _uniform(rng: np.random.Generator, bound: float, shape: tuple[int, ...]) -> np.ndarray:
    """U(-bound, bound); a zero bound (an empty fan) gives zeros and draws nothing."""
    return rng.uniform(-bound, bound, size=shape) if bound > 0 else np.zeros(shape)


def _normal(rng: np.random.Generator, std: float, shape: tuple[int, ...]) -> np.ndarray:
    return rng.normal(0.0, std, size=shape) if std > 0 else np.zeros(shape)


def constant(value: float) -> ParameterInit:
    """Every element ``value``; draws nothing.

    Parameters
    ----------
    value : float
        The value of every element.

    Returns
    -------
    ParameterInit
        ``init(rng, shape, *, fan_in, fan_out)`` returning a host float64 array of ``shape``.

    Examples
    --------
    >>> import numpy as np
    >>> from portable_nn.init import constant
    >>> constant(0.5)(np.random.default_rng(0), (2,), fan_in=1, fan_out=2)
    array([0.5, 0.5])
    """

    def init(rng: np.random.Generator, shape: tuple[int, ...], *, fan_in: int, fan_out: int) -> np.ndarray:
        return np.full(shape, float(value))

    return init


def fan_in_uniform() -> ParameterInit:
    """U(±1/√fan_in) (zeros when ``fan_in`` is 0): ``torch.nn.Linear``'s default for weight and bias.

    Returns
    -------
    ParameterInit
        ``init(rng, shape, *, fan_in, fan_out)`` returning a host float64 array of ``shape``.

    Examples
    --------
    >>> import numpy as np
    >>> from portable_nn.init import fan_in_uniform
    >>> w = fan_in_uniform()(np.random.default_rng(0), (3, 4), fan_in=4, fan_out=3)
    >>> bool(np.all(np.abs(w) <= 0.5))
    True
    """

    def init(rng: np.random.Generator, shape: tuple[int, ...], *, fan_in: int, fan_out: int) -> np.ndarray:
        return _uniform(rng, 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0, shape)

    return init


def uniform(low: float = 0.0, high: float = 1.0) -> ParameterInit:
    """U(low, high).

    Parameters
    ----------
    low, high : float, optional
        The bounds of the interval (default 0 and 1).

    Returns
    -------
    ParameterInit
        ``init(rng, shape, *, fan_in, fan_out)`` returning a host float64 array of ``shape``.

    Examples
    --------
    >>> import numpy as np
    >>> from portable_nn.init import uniform
    >>> w = uniform(-2.0, -1.0)(np.random.default_rng(0), (5,), fan_in=5, fan_out=5)
    >>> bool(np.all((-2.0 <= w) & (w < -1.0)))
    True
    """

    def init(rng: np.random.Generator, shape: tuple[int, ...], *, fan_in: int, fan_out: int) -> np.ndarray:
        return rng.uniform(low, high, size=shape)

    return init


def normal(mean: float = 0.0, std: float = 1.0) -> ParameterInit:
    """N(mean, std²).

    Parameters
    ----------
    mean : float, optional
        The mean (default 0).
    std : float, optional
        The standard deviation (default 1); 0 gives ``mean`` everywhere without drawing.

    Returns
    -------
    ParameterInit
        ``init(rng, shape, *, fan_in, fan_out)`` returning a host float64 array of ``shape``.

    Examples
    --------
    >>> import numpy as np
    >>> from portable_nn.init import normal
    >>> normal(3.0, 0.0)(np.random.default_rng(0), (2,), fan_in=2, fan_out=2)
    array([3., 3.])
    """

    def init(rng: np.random.Generator, shape: tuple[int, ...], *, fan_in: int, fan_out: int) -> np.ndarray:
        return mean + _normal(rng, std, shape)

    return init


def xavier_uniform(gain: float = 1.0) -> ParameterInit:
    """Glorot/Xavier uniform: U(±gain·√(6 / (fan_in + fan_out))).

    Parameters
    ----------
    gain : float, optional
        Scale of the distribution (default 1; see :func:`calculate_gain`).

    Returns
    -------
    ParameterInit
        ``init(rng, shape, *, fan_in, fan_out)`` returning a host float64 array of ``shape``.

    Examples
    --------
    >>> import numpy as np
    >>> from portable_nn.init import xavier_uniform
    >>> w = xavier_uniform(gain=2.0)(np.random.default_rng(0), (3, 2), fan_in=2, fan_out=3)
    >>> bool(np.all(np.abs(w) <= 2.0 * np.sqrt(6 / 5)))
    True
    """

    def init(rng: np.random.Generator, shape: tuple[int, ...], *, fan_in: int, fan_out: int) -> np.ndarray:
        fan = fan_in + fan_out
        return _uniform(rng, gain * math.sqrt(6.0 / fan) if fan > 0 else 0.0, shape)

    return init


def xavier_normal(gain: float = 1.0) -> ParameterInit:
    """Glorot/Xavier normal: N(0, gain²·2 / (fan_in + fan_out)).

    Parameters
    ----------
    gain : float, optional
        Scale of the distribution (default 1; see :func:`calculate_gain`).

    Returns
    -------
    ParameterInit
        ``init(rng, shape, *, fan_in, fan_out)`` returning a host float64 array of ``shape``.

    Examples
    --------
    >>> import numpy as np
    >>> from portable_nn.init import xavier_normal
    >>> w = xavier_normal()(np.random.default_rng(0), (200, 300), fan_in=300, fan_out=200)
    >>> bool(abs(w.std() - np.sqrt(2 / 500)) < 0.002)
    True
    """

    def init(rng: np.random.Generator, shape: tuple[int, ...], *, fan_in: int, fan_out: int) -> np.ndarray:
        fan = fan_in + fan_out
        return _normal(rng, gain * math.sqrt(2.0 / fan) if fan > 0 else 0.0, shape)

    return init


def _kaiming_std(a: float, mode: str, nonlinearity: str, fan_in: int, fan_out: int) -> float:
    if mode not in ("fan_in", "fan_out"):
        raise ArgumentError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan = fan_in if mode == "fan_in" else fan_out
    return calculate_gain(nonlinearity, a) / math.sqrt(fan) if fan > 0 else 0.0


def kaiming_uniform(a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu") -> ParameterInit:
    """He/Kaiming uniform: U(±√3·gain/√fan), ``fan`` = ``fan_in`` or ``fan_out`` (``mode``).

    Parameters
    ----------
    a : float, optional
        The negative slope of ``"leaky_relu"`` (default 0: the gain of ReLU).
    mode : {"fan_in", "fan_out"}, optional
        Which fan scales the distribution: ``"fan_in"`` keeps the forward variance, ``"fan_out"`` the backward one.
    nonlinearity : str, optional
        The nonlinearity the gain is computed for (:func:`calculate_gain`; default ``"leaky_relu"``).

    Returns
    -------
    ParameterInit
        ``init(rng, shape, *, fan_in, fan_out)`` returning a host float64 array of ``shape``.

    Raises
    ------
    ArgumentError
        If ``mode`` or ``nonlinearity`` is unknown (checked when the initializer is made, not at its first draw).

    Examples
    --------
    >>> import numpy as np
    >>> from portable_nn.init import kaiming_uniform
    >>> w = kaiming_uniform(nonlinearity="relu")(np.random.default_rng(0), (4, 8), fan_in=8, fan_out=4)
    >>> bool(np.all(np.abs(w) <= np.sqrt(3) * np.sqrt(2) / np.sqrt(8)))
    True
    """
    _kaiming_std(a, mode, nonlinearity, 1, 1)  # validate now, not at the first draw

    def init(rng: np.random.Generator, shape: tuple[int, ...], *, fan_in: int, fan_out: int) -> np.ndarray:
        return _uniform(rng, math.sqrt(3.0) * _kaiming_std(a, mode, nonlinearity, fan_in, fan_out), shape)

    return init


def kaiming_normal(a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu") -> ParameterInit:
    """He/Kaiming normal: N(0, gain² / fan).

    Parameters
    ----------
    a : float, optional
        The negative slope of ``"leaky_relu"`` (default 0: the gain of ReLU).
    mode : {"fan_in", "fan_out"}, optional
        Which fan scales the distribution: ``"fan_in"`` keeps the forward variance, ``"fan_out"`` the backward one.
    nonlinearity : str, optional
        The nonlinearity the gain is computed for (:func:`calculate_gain`; default ``"leaky_relu"``).

    Returns
    -------
    ParameterInit
        ``init(rng, shape, *, fan_in, fan_out)`` returning a host float64 array of ``shape``.

    Raises
    ------
    ArgumentError
        If ``mode`` or ``nonlinearity`` is unknown (checked when the initializer is made, not at its first draw).

    Examples
    --------
    >>> import numpy as np
    >>> from portable_nn.init import kaiming_normal
    >>> w = kaiming_normal(mode="fan_out", nonlinearity="relu")(np.random.default_rng(0), (300, 200), fan_in=200,
    ...                                                         fan_out=300)
    >>> bool(abs(w.std() - np.sqrt(2 / 300)) < 0.002)
    True
    """
    _kaiming_std(a, mode, nonlinearity, 1, 1)

    def init(rng: np.random.Generator, shape: tuple[int, ...], *, fan_in: int, fan_out: int) -> np.ndarray:
        return _normal(rng, _kaiming_std(a, mode, nonlinearity, fan_in, fan_out), shape)

    return init


#: Built-in parameter initializers by name (what ``add_parameter(..., init="name")`` accepts).
PARAMETER_INITS: dict[str, ParameterInit] = {
    "zeros": constant(0.0),
    "ones": constant(1.0),
    "torch": fan_in_uniform(),
    "uniform": uniform(),
    "normal": normal(),
    "xavier_uniform": xavier_uniform(),
    "glorot_uniform": xavier_uniform(),
    "xavier_normal": xavier_normal(),
    "glorot_normal": xavier_normal(),
    "kaiming_uniform": kaiming_uniform(),
    "he_uniform": kaiming_uniform(nonlinearity="relu"),
    "kaiming_normal": kaiming_normal(),
    "he_normal": kaiming_normal(nonlinearity="relu"),
}


def draw(
    init: str | ParameterInit,
    rng: np.random.Generator,
    shape: Sequence[int],
    *,
    fan_in: int | None = None,
    fan_out: int | None = None,
) -> np.ndarray:
    """A host float64 array of ``shape`` drawn by ``init`` (a name of :data:`PARAMETER_INITS` or a callable).

    ``fan_in``/``fan_out`` default to :func:`default_fans` of ``shape``. Inside :func:`placeholder`,
    zeros of the placeholder's dtype instead, and nothing is drawn.

    Parameters
    ----------
    init : str or ParameterInit
        A name of :data:`PARAMETER_INITS` (``"zeros"``, ``"xavier_uniform"``...) or a parameter initializer.
    rng : numpy.random.Generator
        The generator to draw from (see :func:`make_rng`).
    shape : sequence of int
        The shape of the parameter.
    fan_in, fan_out : int, optional
        The fans the initializer scales by (default: :func:`default_fans` of ``shape``).

    Returns
    -------
    numpy.ndarray
        A host float64 array of ``shape``.

    Raises
    ------
    ArgumentTypeError
        If ``shape`` is not a tuple of ints >= 0, or ``init`` neither a name nor a callable.
    ArgumentError
        If ``init`` is an unknown name.
    ShapeError
        If the initializer returns another shape.

    Examples
    --------
    >>> import numpy as np
    >>> from portable_nn.init import draw
    >>> draw("ones", np.random.default_rng(0), (2, 3)).shape
    (2, 3)
    """
    shape = tuple(shape)
    if not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        raise ArgumentTypeError(f"shape must be a tuple of ints >= 0, got {shape!r}")
    if _PLACEHOLDER.get() is not None:
        return _placeholder_draw(shape)
    if isinstance(init, str):
        if init not in PARAMETER_INITS:
            raise ArgumentError(f"unknown init {init!r}; known: {sorted(PARAMETER_INITS)} or a callable")
        init = PARAMETER_INITS[init]
    elif not callable(init):
        raise ArgumentTypeError(f"init must be a name or a callable, got {type(init).__name__}")
    default_in, default_out = default_fans(shape)
    fans = {"fan_in": default_in if fan_in is None else fan_in, "fan_out": default_out if fan_out is None else fan_out}
    value = np.asarray(init(rng, shape, **fans), dtype=np.float64)
    if value.shape != shape:
        raise ShapeError(f"init returned shape {value.shape}; expected {shape}")
    return value
