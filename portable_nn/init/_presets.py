"""``Linear``'s initializer presets in the pair form ``init(rng, in_features, out_features) -> (weight, bias)``."""

from __future__ import annotations

import numpy as np

from ..errors import ArgumentError, ShapeError
from ._parameter_inits import draw
from ._rng_and_fans import Initializer, Seed, make_rng


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
