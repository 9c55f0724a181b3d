"""``Dropout(p)``: zero each element with probability ``p`` in train mode and scale the rest by ``1/(1-p)``.

The mask comes from :mod:`portable_nn.nn.rng` (``bernoulli(call.key, 1 - p, x.shape)``), so one key
gives the same mask on every backend and inside compiled programs; the key is an explicit field of
the :class:`~portable_nn.nn.grad_mode.Call` (``Module.forward`` passes its stream's next key and
advances it). In eval mode, or with ``p == 0``, the layer is the identity and draws nothing.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

from .._backend import namespace_of
from .._checks import check_array, check_floating
from ..errors import ArgumentError, ArgumentTypeError
from .grad_mode import CHECKED, Call
from .module import Module
from .rng import RandomStream, bernoulli

__all__ = ["Dropout"]

Array = Any


class Dropout(Module):
    """Train mode: ``y = x * mask / (1 - p)`` with ``mask ~ Bernoulli(1 - p)`` per element; eval mode: ``y = x``.

    Backward multiplies ``dL/dy`` by the same mask and scale (``dL/dx = dL/dy * mask / (1 - p)``).
    Any shape and real floating dtype; no parameters (the placement comes from the input).
    ``p == 1`` zeroes everything (and its gradient), as in PyTorch.

    Parameters
    ----------
    p : float
        The probability of zeroing an element, in ``[0, 1]``.
    seed : int or None
        The seed of the layer's :class:`~portable_nn.nn.rng.RandomStream` (None: a fresh random seed).
        A standalone layer draws its masks from it; inside a container the container's stream is
        used (seeded by its first random layer) and the layer gets ``fold_in(key, index)``.

    Raises
    ------
    ArgumentTypeError, ArgumentError
        ``p`` is not a number in ``[0, 1]``.

    Examples
    --------
    >>> import numpy as np, portable_nn as pnn
    >>> drop = pnn.Dropout(0.5, seed=0)
    >>> x = np.ones((2, 4), np.float32)
    >>> sorted(set(drop(x).ravel().tolist()))
    [0.0, 2.0]
    >>> drop.eval()(x).tolist() == x.tolist()
    True
    """

    needs_random_key = True

    def __init__(self, p: float = 0.5, *, seed: int | None = None) -> None:
        if isinstance(p, bool) or not isinstance(p, (int, float)):
            raise ArgumentTypeError(f"Dropout: p must be a float in [0, 1], got {type(p).__name__}")
        if not 0.0 <= p <= 1.0:
            raise ArgumentError(f"Dropout: p must be a probability in [0, 1], got {p}")
        self.p = float(p)
        self._stream = RandomStream(secrets.randbits(63) if seed is None else seed)
        self._forget_kept()

    def functional_forward(self, params: Mapping[str, Array], x: Array, call: Call = CHECKED) -> tuple[Array, Any]:
        """``(y, mask or None)``: the dropped and scaled ``x`` and the boolean mask kept (None: identity).

        Parameters
        ----------
        params : mapping
            Empty (no parameters).
        x : array
            Any shape, real floating dtype.
        call : Call
            ``call.training`` selects train mode, which needs ``call.key``.

        Returns
        -------
        y : array
            ``x``'s shape and dtype.
        saved : array or None
            The keep-mask (booleans of ``x``'s shape), None in eval mode or with ``p == 0``.

        Raises
        ------
        DTypeError
            ``x`` is not real floating.
        ArgumentError
            Train mode without a key.

        Examples
        --------
        >>> import numpy as np, portable_nn as pnn
        >>> from portable_nn import rng
        >>> from portable_nn.nn.module import Call
        >>> y, mask = pnn.Dropout(0.25).functional_forward({}, np.ones(4, np.float32), Call(key=rng.key(0, xp="numpy")))
        >>> y.tolist() == np.where(mask, np.float32(1 / 0.75), 0).tolist()
        True
        """
        xp = check_floating(x, "input") if call.validate else namespace_of(x)
        if not call.training or self.p == 0.0:
            return x, None
        if call.key is None:
            raise ArgumentError(
                "Dropout in train mode needs a random key: call.key is None "
                "(pass Call(training=True, key=rng.key(...)) "
                "to the pure form, or call model.eval())"
            )
        keep = bernoulli(call.key, 1.0 - self.p, tuple(x.shape))
        if self.p == 1.0:
            return xp.zeros_like(x), keep
        return xp.where(keep, x * (1.0 / (1.0 - self.p)), xp.zeros_like(x)), keep

    def functional_backward(
        self,
        params: Mapping[str, Array],
        saved: Any,
        grad_output: Array,
        need_input_grad: bool = True,
        call: Call = CHECKED,
    ) -> tuple[Array | None, dict[str, Array]]:
        """``(dL/dy * mask / (1 - p), {})`` with the forward's mask (``dL/dy`` itself in eval mode).

        Parameters
        ----------
        params : mapping
            Empty.
        saved : array or None
            The forward's mask.
        grad_output : array
            ``dL/dy``.
        need_input_grad : bool
            Unused (the input gradient is cheap).
        call : Call
            ``call.validate``: check ``grad_output``.

        Returns
        -------
        grad_x : array
            ``dL/dx``.
        grads : dict
            Empty.

        Raises
        ------
        DTypeError, ArgumentError
            ``grad_output`` is not real floating or not shaped like the mask.

        Examples
        --------
        >>> import numpy as np, portable_nn as pnn
        >>> grad_x, _ = pnn.Dropout(0.5).functional_backward({}, np.array([True, False]), np.ones(2, np.float32))
        >>> grad_x.tolist()
        [2.0, 0.0]
        """
        xp = check_floating(grad_output, "grad_output") if call.validate else namespace_of(grad_output)
        if saved is None:
            return grad_output, {}
        if call.validate:
            check_array(saved, "mask", xp, None)
            if tuple(saved.shape) != tuple(grad_output.shape):
                raise ArgumentError(f"grad_output: expected shape {tuple(saved.shape)}, got {tuple(grad_output.shape)}")
        if self.p == 1.0:
            return xp.zeros_like(grad_output), {}
        return xp.where(saved, grad_output * (1.0 / (1.0 - self.p)), xp.zeros_like(grad_output)), {}

    def to(self, xp: Any = None, device: Any = None, dtype: Any = None) -> Dropout:
        """No parameters to move; drops the kept forward values, like :meth:`Module.to`. Returns ``self``.

        Parameters
        ----------
        xp, device, dtype : any
            Ignored (the layer takes its placement from its input).

        Returns
        -------
        Dropout
            ``self``.

        Examples
        --------
        >>> import portable_nn as pnn
        >>> drop = pnn.Dropout(0.5)
        >>> drop.to(xp="numpy") is drop
        True
        """
        self._forget_kept()
        return self

    def __repr__(self) -> str:
        return f"Dropout(p={self.p})"

    def get_config(self) -> dict[str, Any]:
        """``{"p": p}`` (the stream's seed and position travel with pickles, not with the architecture).

        Returns
        -------
        dict
            The constructor arguments.

        Examples
        --------
        >>> import portable_nn as pnn
        >>> pnn.Dropout(0.25).get_config()
        {'p': 0.25}
        """
        return {"p": self.p}

    @classmethod
    def from_config(
        cls, config: Mapping[str, Any], *, xp: Any = "numpy", device: Any = None, dtype: Any = "float32"
    ) -> Dropout:
        """A new Dropout from :meth:`get_config`'s dict (placement-free: ``xp``/``device``/``dtype`` are unused).

        Parameters
        ----------
        config : mapping
            ``{"p": float}``.
        xp, device, dtype : any
            Unused.

        Returns
        -------
        Dropout
            A new layer with a fresh seed.

        Raises
        ------
        ArgumentError
            A malformed config.

        Examples
        --------
        >>> import portable_nn as pnn
        >>> pnn.Dropout.from_config({"p": 0.25})
        Dropout(p=0.25)
        """
        if not isinstance(config, Mapping) or set(config) != {"p"}:
            raise ArgumentError(f"Dropout's config is {{'p': float}}, got {config!r}")
        return cls(config["p"])
