"""Host-side seeded initializers: parameters are drawn with NumPy, then moved to the backend.

Drawing on the host (float64, cast on the host to the target dtype) gives bit-identical
parameters for one seed on every backend and device.

A **parameter initializer** is any callable ``init(rng, shape, *, fan_in, fan_out) -> array``
returning a host array of ``shape`` (float64 or anything NumPy converts); ``rng`` is a
``numpy.random.Generator``. :meth:`portable_nn.Module.add_parameter` takes one (or the name of a
built-in) per parameter. The built-ins, by name or from the factories below:

| name | distribution |
|---|---|
| ``"zeros"``, ``"ones"`` | constants |
| ``"torch"`` (:func:`fan_in_uniform`) | U(±1/√fan_in): ``torch.nn.Linear``'s weight and bias |
| ``"uniform"`` (:func:`uniform`) | U(low, high), default U(0, 1) |
| ``"normal"`` (:func:`normal`) | N(mean, std²), default N(0, 1) |
| ``"xavier_uniform"`` / ``"glorot_uniform"`` (:func:`xavier_uniform`) | U(±gain·√(6 / (fan_in + fan_out))) |
| ``"xavier_normal"`` / ``"glorot_normal"`` (:func:`xavier_normal`) | N(0, gain²·2 / (fan_in + fan_out)) |
| ``"kaiming_uniform"`` / ``"he_uniform"`` (:func:`kaiming_uniform`) | U(±gain·√(3 / fan)), gain of ``nonlinearity`` |
| ``"kaiming_normal"`` / ``"he_normal"`` (:func:`kaiming_normal`) | N(0, gain² / fan) |

``Linear`` also keeps its presets ``init="torch" | "glorot_uniform" | "zeros"`` and the older
pair form ``init(rng, in_features, out_features) -> (weight, bias)`` (:func:`initial_parameters`).

Examples
--------
>>> import numpy as np
>>> from portable_nn import init
>>> w = init.xavier_uniform(gain=1.0)(np.random.default_rng(0), (3, 2), fan_in=2, fan_out=3)
>>> w.shape, bool(np.all(np.abs(w) <= np.sqrt(6 / 5)))
((3, 2), True)
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

import numpy as np

from ..errors import ArgumentError, ArgumentTypeError, ShapeError

__all__ = [
    "INITIALIZERS",
    "PARAMETER_INITS",
    "Initializer",
    "ParameterInit",
    "Seed",
    "calculate_gain",
    "constant",
    "default_fans",
    "draw",
    "fan_in_uniform",
    "glorot_uniform",
    "initial_parameters",
    "kaiming_normal",
    "kaiming_uniform",
    "make_rng",
    "normal",
    "placeholder",
    "torch_default",
    "uniform",
    "xavier_normal",
    "xavier_uniform",
    "zeros",
]

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


# --------------------------------------------------------------------------- parameter initializers


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


# --------------------------------------------------------------------------- Linear's presets (pair form)


def torch_default(rng: np.random.Generator, in_features: int, out_features: int) -> tuple[np.ndarray, np.ndarray]:
    """PyTorch's ``nn.Linear`` init: weight and bias ~ U(-1/sqrt(in), 1/sqrt(in)).

    Parameters
    ----------
    rng : numpy.random.Generator
        The generator to draw from.
    in_features, out_features : int
        The layer's input and output sizes.

    Returns
    -------
    tuple of numpy.ndarray
        ``(weight (out_features, in_features), bias (out_features,))``, host float64.

    Examples
    --------
    >>> import numpy as np
    >>> from portable_nn.init import torch_default
    >>> weight, bias = torch_default(np.random.default_rng(0), 4, 3)
    >>> weight.shape, bias.shape, bool(np.all(np.abs(weight) <= 0.5))
    ((3, 4), (3,), True)
    """
    weight = draw("torch", rng, (out_features, in_features))
    return weight, draw("torch", rng, (out_features,), fan_in=in_features, fan_out=out_features)


def glorot_uniform(rng: np.random.Generator, in_features: int, out_features: int) -> tuple[np.ndarray, np.ndarray]:
    """Glorot/Xavier uniform weight ~ U(±sqrt(6 / (in + out))), zero bias (Keras ``Dense`` default).

    Parameters
    ----------
    rng : numpy.random.Generator
        The generator to draw from.
    in_features, out_features : int
        The layer's input and output sizes.

    Returns
    -------
    tuple of numpy.ndarray
        ``(weight (out_features, in_features), bias (out_features,))``, host float64.

    Examples
    --------
    >>> import numpy as np
    >>> from portable_nn.init import glorot_uniform
    >>> weight, bias = glorot_uniform(np.random.default_rng(0), 2, 3)
    >>> weight.shape, bias.tolist()
    ((3, 2), [0.0, 0.0, 0.0])
    """
    return draw("glorot_uniform", rng, (out_features, in_features)), np.zeros((out_features,))


def zeros(rng: np.random.Generator, in_features: int, out_features: int) -> tuple[np.ndarray, np.ndarray]:
    """All-zero weight and bias.

    Parameters
    ----------
    rng : numpy.random.Generator
        The generator to draw from.
    in_features, out_features : int
        The layer's input and output sizes.

    Returns
    -------
    tuple of numpy.ndarray
        ``(weight (out_features, in_features), bias (out_features,))``, host float64.

    Examples
    --------
    >>> import numpy as np
    >>> from portable_nn.init import zeros
    >>> weight, bias = zeros(np.random.default_rng(0), 2, 1)
    >>> weight.tolist(), bias.tolist()
    ([[0.0, 0.0]], [0.0])
    """
    return np.zeros((out_features, in_features)), np.zeros((out_features,))


#: Linear's presets: name -> (weight init, bias init).
LINEAR_PRESETS: dict[str, tuple[str, str]] = {
    "torch": ("torch", "torch"),
    "glorot_uniform": ("glorot_uniform", "zeros"),
    "zeros": ("zeros", "zeros"),
}
INITIALIZERS: dict[str, Initializer] = {"torch": torch_default, "glorot_uniform": glorot_uniform, "zeros": zeros}


def initial_parameters(
    init: str | Initializer, in_features: int, out_features: int, seed: Seed
) -> tuple[np.ndarray, np.ndarray]:
    """Host float64 ``(weight (out, in), bias (out,))`` drawn by a Linear preset or pair initializer from ``seed``.

    Parameters
    ----------
    init : str or Initializer
        A name of ``INITIALIZERS`` (``"torch"``, ``"glorot_uniform"``, ``"zeros"``) or a pair initializer
        ``init(rng, in_features, out_features) -> (weight, bias)``.
    in_features, out_features : int
        The layer's input and output sizes.
    seed : int, numpy.random.Generator or None
        Where the draws come from (see :func:`make_rng`).

    Returns
    -------
    tuple of numpy.ndarray
        ``(weight (out_features, in_features), bias (out_features,))``, host float64.

    Raises
    ------
    ArgumentError
        If ``init`` is an unknown name.
    ArgumentTypeError
        If ``seed`` is not an int, a Generator or None.
    ShapeError
        If the initializer returns other shapes.

    Examples
    --------
    >>> from portable_nn.init import initial_parameters
    >>> weight, bias = initial_parameters("torch", 4, 3, seed=0)
    >>> weight.shape, bias.shape, weight.dtype
    ((3, 4), (3,), dtype('float64'))
    """
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


# --------------------------------------------------------------------------- placeholders (rebuilding from a file)

#: The element budget left while :func:`placeholder` is active (None: not active).
_PLACEHOLDER: contextvars.ContextVar[tuple[np.dtype[Any], list[int]] | None] = contextvars.ContextVar(
    "_PLACEHOLDER", default=None
)


@contextlib.contextmanager
def placeholder(max_elements: int, dtype: str = "float64") -> Iterator[None]:
    """Within the block, :func:`draw` ignores its initializer and returns zeros (no random draw).

    Used to build a module whose parameters are about to be replaced (``pnn.load``): the
    initializers' work is skipped, and the parameters declared in the block may hold at most
    ``max_elements`` elements in all, checked before anything is allocated (a ``ShapeError``
    otherwise), so a config asking for a huge layer cannot exhaust memory. The zeros have the
    host ``dtype`` (pass the target's, e.g. ``"float32"``: then NumPy and torch keep the fresh,
    untouched zero pages instead of copying them).

    Parameters
    ----------
    max_elements : int
        The most elements all parameters declared in the block may hold together.
    dtype : str, optional
        The host dtype of the zeros (default ``"float64"``).

    Yields
    ------
    None
        Nothing: the mode holds while the block runs.

    Raises
    ------
    ShapeError
        Inside the block, from :func:`draw`, when a parameter would exceed the elements left.

    Examples
    --------
    >>> import portable_nn as pnn
    >>> with pnn.init.placeholder(12):
    ...     layer = pnn.Linear(3, 3)
    >>> float(layer.weight.sum())
    0.0
    """
    token = _PLACEHOLDER.set((np.dtype(dtype), [max_elements, max_elements]))
    try:
        yield
    finally:
        _PLACEHOLDER.reset(token)


def _placeholder_draw(shape: tuple[int, ...]) -> np.ndarray:
    active = _PLACEHOLDER.get()
    assert active is not None
    dtype, budget = active
    size = math.prod(shape)
    if size > budget[0]:
        raise ShapeError(
            f"a parameter of shape {shape} ({size} elements) exceeds the {budget[0]} of {budget[1]} elements "
            "left to place"
        )
    budget[0] -= size
    return np.zeros(shape, dtype=dtype)
