"""``Linear``: the stateful fully connected layer, ``y = x @ weight.T + bias``, on any array-API backend."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._backend import (
    FLOAT_DTYPES,
    convert,
    device_of,
    dtype_name,
    is_torch_module,
    namespace_of,
    target_placement,
    torch_linear,
)
from .._checks import namespace_of_arg, shape_str
from ..errors import ArgumentError, ArgumentTypeError, DTypeError, ShapeError
from ..functional import _linear, _linear_backward
from ..init import LINEAR_PRESETS, Initializer, ParameterInit, Seed, initial_parameters
from ..typing import Array
from .module import CHECKED, Call, Module

__all__ = ["Linear"]


def _check_features_arg(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ArgumentTypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 0:
        raise ArgumentError(f"{name} must be >= 0, got {value}")
    if value >= 2**63:  # no array has 2**63 elements along an axis
        raise ArgumentError(f"{name} must be < 2**63, got a number of {len(str(value))} digits")
    return value


class Linear(Module):
    """Fully connected layer in PyTorch's layout: ``y = x @ weight.T + bias``.

    ``weight`` is (out_features, in_features), ``bias`` is (out_features,) or ``None``.
    The layer writes the pure pair (:meth:`functional_forward`, :meth:`functional_backward`);
    from it :class:`~portable_nn.Module` derives ``forward(x)``/``layer(x)``, which maps
    ``(*, in_features)`` to ``(*, out_features)`` and keeps ``x`` for ``backward(grad_output)``,
    which returns ``grad_x`` and accumulates ``grad_weight`` and ``grad_bias``. ``step(lr)`` then
    applies ``p <- p - lr * grad``.

    Parameters are drawn on the host from ``seed`` (see :mod:`portable_nn.init`) and moved
    to ``xp``/``device`` as ``dtype``, so one seed gives the same bytes on every backend.

    Parameters
    ----------
    in_features, out_features : int
        Sizes of the last input and output axes.
    bias : bool
        Whether the layer has a bias.
    xp : str, namespace or array
        Backend, as in :class:`~portable_nn.Module`: a name (``"numpy"``, ``"torch"``, ...), a namespace, or an
        array whose namespace to use.
    device : str, device or None
        ``"cpu"``, ``"cuda:N"``, a native device, or None for the backend's default.
    dtype : str or dtype
        ``"float32"`` (default) or another floating dtype.
    seed : int, numpy.random.Generator or None
        Seed of the host draw (None: fresh entropy).
    init : {"torch", "glorot_uniform", "zeros"} or callable
        Preset for both parameters: ``"torch"`` (U(±1/√in), PyTorch's default),
        ``"glorot_uniform"`` (Glorot weight, zero bias), ``"zeros"``; or a pair initializer
        ``init(rng, in_features, out_features) -> (weight, bias)`` of host arrays.
    weight_init, bias_init : str or callable, optional
        Per-parameter initializers (names of :data:`portable_nn.init.PARAMETER_INITS` or
        ``init(rng, shape, *, fan_in, fan_out)``) overriding the preset; the bias uses the
        weight's fans, as in PyTorch.

    Raises
    ------
    ArgumentTypeError
        ``in_features``/``out_features`` is not an int, ``bias`` not a bool, or ``init`` neither a
        preset name nor a callable.
    ArgumentError
        A negative size, an unknown preset, or both ``init`` and ``weight_init``/``bias_init``.

    Examples
    --------
    >>> import portable_nn as pnn
    >>> layer = pnn.Linear(3, 2, seed=0)
    >>> y = layer(layer.xp.ones((4, 3), dtype=layer.dtype))
    >>> y.shape, layer.backward(layer.xp.ones_like(y)).shape, layer.grad_weight.shape
    ((4, 2), (4, 3), (2, 3))
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        *,
        xp: Any = "numpy",
        device: Any = None,
        dtype: Any = "float32",
        seed: Seed = None,
        init: str | Initializer = "torch",
        weight_init: str | ParameterInit | None = None,
        bias_init: str | ParameterInit | None = None,
    ) -> None:
        self.in_features = _check_features_arg("in_features", in_features)
        self.out_features = _check_features_arg("out_features", out_features)
        if not isinstance(bias, bool):
            raise ArgumentTypeError(f"bias must be a bool, got {type(bias).__name__}")
        super().__init__(xp=xp, device=device, dtype=dtype, seed=seed)
        inits = _parameter_inits(init, weight_init, bias_init, in_features, out_features, self._rng)
        fans = {"fan_in": in_features, "fan_out": out_features}
        self.add_parameter("weight", (out_features, in_features), inits[0], **fans)
        if bias:
            self.add_parameter("bias", (out_features,), inits[1], **fans)
        else:
            self.register_parameter("bias", None)

    def functional_forward(self, params: Mapping[str, Array], x: Array, call: Call = CHECKED) -> tuple[Array, Any]:
        """``(y, saved)``: ``y = x @ weight.T + bias``, ``(*, in_features) -> (*, out_features)``; pure.

        Parameters
        ----------
        params : mapping of str to array
            ``"weight"`` (out_features, in_features) and, with a bias, ``"bias"`` (out_features,).
        x : array
            The input, (*, in_features), of the layer's backend, device and dtype.
        call : Call
            ``call.validate``: check ``x`` (see :class:`~portable_nn.nn.module.Call`).

        Returns
        -------
        y : array
            (*, out_features).
        saved : tuple
            ``(x, y.shape)``, for :meth:`functional_backward`.

        Raises
        ------
        NamespaceError, DeviceError, DTypeError, ShapeError
            With ``call.validate``, ``x`` does not fit the layer.

        Examples
        --------
        >>> import portable_nn as pnn
        >>> layer = pnn.Linear(3, 2, seed=0)
        >>> y, saved = layer.functional_forward(layer.named_parameters(), layer.xp.ones((4, 3), dtype=layer.dtype))
        >>> y.shape, saved[1]
        ((4, 2), (4, 2))
        """
        if call.validate:
            self.check_input(x, last_axis=self.in_features)
        y = _linear(x, params["weight"], params["bias"] if "bias" in params else None)  # noqa: SIM401  (no call)
        return y, (x, y.shape)  # the shape backward expects of grad_output

    def functional_backward(
        self,
        params: Mapping[str, Array],
        saved: Any,
        grad_output: Array,
        need_input_grad: bool = True,
        call: Call = CHECKED,
    ) -> tuple[Array | None, dict[str, Array]]:
        """``(dL/dx or None, {"weight": ..., "bias": ...})`` from :meth:`functional_forward`'s ``saved``; pure.

        Parameters
        ----------
        params : mapping of str to array
            The parameters the forward ran with.
        saved : tuple
            The forward's ``saved``: ``(x, y.shape)``.
        grad_output : array
            ``dL/dy``, of the forward output's shape.
        need_input_grad : bool
            False skips ``grad_output @ weight`` and returns None for ``dL/dx``.
        call : Call
            ``call.validate``: check ``grad_output``.

        Returns
        -------
        grad_x : array or None
            ``dL/dx`` (the input's shape), None unless ``need_input_grad``.
        grads : dict of str to array
            ``"weight"`` (out, in) and, with a bias, ``"bias"`` (out,).

        Raises
        ------
        NamespaceError, DeviceError, DTypeError, ShapeError
            With ``call.validate``, ``grad_output`` does not fit.

        Examples
        --------
        >>> import portable_nn as pnn
        >>> layer = pnn.Linear(3, 2, seed=0)
        >>> params = layer.named_parameters()
        >>> y, saved = layer.functional_forward(params, layer.xp.ones((4, 3), dtype=layer.dtype))
        >>> grad_x, grads = layer.functional_backward(params, saved, layer.xp.ones_like(y), need_input_grad=False)
        >>> grad_x, grads["weight"].shape, grads["bias"].tolist()
        (None, (2, 3), [4.0, 4.0])
        """
        x, expected = saved
        if call.validate:
            self.check_input(grad_output, "grad_output", shape=expected)
        has_bias = "bias" in params
        grad_x, grad_weight, grad_bias = _linear_backward(
            self.xp, grad_output, x, params["weight"], has_bias, need_input_grad
        )
        return grad_x, {"weight": grad_weight, "bias": grad_bias} if has_bias else {"weight": grad_weight}

    # ---------------------------------------------------------------- interop

    @classmethod
    def from_arrays(
        cls,
        weight: Array,
        bias: Array | None = None,
        *,
        layout: str = "out_in",
        xp: Any = None,
        device: Any = None,
        dtype: Any = None,
    ) -> Linear:
        """A layer holding copies of ``weight`` and ``bias``, arrays of any backend and device.

        ``layout="out_in"``: ``weight`` is (out_features, in_features), PyTorch's layout.
        ``layout="in_out"``: ``weight`` is (in_features, out_features), the kernel ``W`` of
        ``Z = X W + b`` (a Keras ``Dense`` kernel); it is transposed for you. ``bias`` is
        (out_features,) or None. ``xp``/``device``/``dtype`` default to the weight's (device by
        portable string); a given ``dtype`` is an explicit cast, without it weight and bias
        must share one floating dtype.

        Parameters
        ----------
        weight : array
            2-D floating array, shape (out_features, in_features) or, with ``layout="in_out"``,
            (in_features, out_features).
        bias : array or None
            Shape (out_features,), or None for a layer without bias.
        layout : {"out_in", "in_out"}
            The axis order of ``weight``.
        xp : str, namespace, array or None
            The layer's backend; None: the weight's.
        device : str, device or None
            The layer's device; None: the weight's.
        dtype : str, dtype or None
            The layer's dtype (an explicit cast); None: the weight's.

        Returns
        -------
        Linear
            A new layer; later changes to ``weight`` or ``bias`` do not reach it.

        Raises
        ------
        ArgumentError
            ``layout`` is neither ``"out_in"`` nor ``"in_out"``.
        ShapeError
            ``weight`` is not 2-D, or ``bias`` is not (out_features,).
        DTypeError
            An array is not floating, or ``bias``'s dtype differs from ``weight``'s without ``dtype``.

        Examples
        --------
        >>> import numpy as np
        >>> import portable_nn as pnn
        >>> kernel = np.arange(6.0).reshape(3, 2)  # (in_features, out_features)
        >>> layer = pnn.Linear.from_arrays(kernel, np.zeros(2), layout="in_out")
        >>> layer.weight.shape, layer.weight.dtype
        ((2, 3), dtype('float64'))
        >>> layer(np.ones((1, 3))).tolist()
        [[6.0, 9.0]]
        """
        if layout not in ("out_in", "in_out"):
            raise ArgumentError(f"layout must be 'out_in' (out, in) or 'in_out' (in, out), got {layout!r}")
        source = namespace_of_arg("weight", weight)
        if weight.ndim != 2:
            raise ShapeError(f"weight: expected a 2-D array in layout {layout!r}, got shape {shape_str(weight.shape)}")
        if layout == "in_out":
            weight = source.permute_dims(weight, (1, 0))
        out_features, in_features = weight.shape
        arrays = {"weight": weight} if bias is None else {"weight": weight, "bias": bias}
        for name, array in arrays.items():
            given = dtype_name(namespace_of_arg(name, array), array.dtype)
            if given not in FLOAT_DTYPES:
                raise DTypeError(f"{name}: expected a floating array ({', '.join(FLOAT_DTYPES)}), got dtype {given}")
        if bias is not None:
            if tuple(bias.shape) != (out_features,):
                raise ShapeError(f"bias: expected shape ({out_features},), got {shape_str(bias.shape)}")
            bias_dtype = dtype_name(namespace_of(bias), bias.dtype)
            if dtype is None and bias_dtype != dtype_name(source, weight.dtype):
                raise DTypeError(
                    f"bias: dtype {bias_dtype} differs from weight's {dtype_name(source, weight.dtype)}; "
                    "pass dtype= to cast both explicitly"
                )
        target = target_placement(source, device_of(weight), weight.dtype, xp, device, dtype)
        params = {name: convert(array, *target, copy=True) for name, array in arrays.items()}
        layer = cls(
            in_features, out_features, bias is not None, xp=target[0], device=target[1], dtype=target[2], init="zeros"
        )
        layer.set_parameters(params)
        return layer

    @classmethod
    def from_torch(cls, module: Any, *, xp: Any = None, device: Any = None, dtype: Any = None) -> Linear:
        """A layer holding copies of a ``torch.nn.Linear``'s weight and bias (no torch import here).

        ``xp``/``device``/``dtype`` default to the torch module's (torch, its device, its dtype);
        later in-place updates of the torch module (optimizer steps) do not reach the copy.

        Parameters
        ----------
        module : torch.nn.Linear
            The torch layer.
        xp : str, namespace, array or None
            The layer's backend; None: torch.
        device : str, device or None
            The layer's device; None: the torch module's.
        dtype : str, dtype or None
            The layer's dtype; None: the torch module's.

        Returns
        -------
        Linear
            A new layer with copies of ``module``'s parameters.

        Raises
        ------
        ArgumentTypeError
            ``module`` is not a torch module with a ``weight``.

        Examples
        --------
        >>> import torch
        >>> import portable_nn as pnn
        >>> layer = pnn.Linear.from_torch(torch.nn.Linear(3, 2), xp="numpy")
        >>> layer
        Linear(in_features=3, out_features=2, bias=True, backend=numpy, device=cpu, dtype=float32)
        """
        weight = getattr(module, "weight", None)
        if not is_torch_module(module) or weight is None:
            raise ArgumentTypeError(f"from_torch expects a torch.nn.Linear, got {type(module).__name__}")
        return cls.from_arrays(weight, getattr(module, "bias", None), xp=xp, device=device, dtype=dtype)

    def to_torch(self) -> Any:
        """A ``torch.nn.Linear`` holding copies of the parameters, same dtype and device (else torch's default).

        Returns
        -------
        torch.nn.Linear
            A new torch layer; its parameters are copies.

        Examples
        --------
        >>> import portable_nn as pnn
        >>> module = pnn.Linear(3, 2, seed=0).to_torch()
        >>> type(module).__name__, tuple(module.weight.shape)
        ('Linear', (2, 3))
        """
        weight = convert(self.weight, "torch", copy=True)
        return torch_linear(weight, None if self.bias is None else convert(self.bias, "torch", copy=True))

    # ---------------------------------------------------------------- display

    def extra_repr(self) -> str:
        """The layer's sizes, as ``repr`` shows them before the placement.

        Returns
        -------
        str
            ``"in_features=..., out_features=..., bias=..."``.

        Examples
        --------
        >>> import portable_nn as pnn
        >>> pnn.Linear(3, 2, bias=False).extra_repr()
        'in_features=3, out_features=2, bias=False'
        """
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()}, {self._placement()})"

    # ---------------------------------------------------------------- architecture config

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments that define the architecture (see :meth:`Module.get_config`).

        Returns
        -------
        dict
            ``{"in_features": int, "out_features": int, "bias": bool}``.

        Examples
        --------
        >>> import portable_nn as pnn
        >>> pnn.Linear(3, 2).get_config()
        {'in_features': 3, 'out_features': 2, 'bias': True}
        """
        return {"in_features": self.in_features, "out_features": self.out_features, "bias": self.bias is not None}

    @classmethod
    def from_config(
        cls, config: Mapping[str, Any], *, xp: Any = "numpy", device: Any = None, dtype: Any = "float32"
    ) -> Linear:
        """A zero-initialized layer from :meth:`get_config`'s dict.

        Parameters
        ----------
        config : mapping
            Exactly the keys ``in_features``, ``out_features`` and ``bias``.
        xp : str, namespace or array
            The backend.
        device : str, device or None
            The device; None: the backend's default.
        dtype : str or dtype
            The floating dtype.

        Returns
        -------
        Linear
            A new layer, parameters all zero (load a state dict into it).

        Raises
        ------
        ArgumentError
            ``config`` is no mapping, or has unknown or missing keys.

        Examples
        --------
        >>> import portable_nn as pnn
        >>> layer = pnn.Linear.from_config({"in_features": 3, "out_features": 2, "bias": True})
        >>> layer.bias.tolist()
        [0.0, 0.0]
        """
        keys = {"in_features", "out_features", "bias"}
        if not isinstance(config, Mapping) or set(config) != keys:
            given = sorted(config) if isinstance(config, Mapping) else type(config).__name__
            raise ArgumentError(f"a Linear config has exactly the keys {sorted(keys)}, got {given}")
        return cls(
            config["in_features"],
            config["out_features"],
            config["bias"],
            xp=xp,
            device=device,
            dtype=dtype,
            init="zeros",
        )


def _parameter_inits(
    init: str | Initializer,
    weight_init: str | ParameterInit | None,
    bias_init: str | ParameterInit | None,
    in_features: int,
    out_features: int,
    rng: Any,
) -> tuple[str | ParameterInit, str | ParameterInit]:
    """(weight init, bias init): the preset's, a pair initializer's draws, or the per-parameter overrides."""
    if isinstance(init, str):
        if init not in LINEAR_PRESETS:
            raise ArgumentError(f"unknown init {init!r}; known: {sorted(LINEAR_PRESETS)} or a callable")
        weight, bias = LINEAR_PRESETS[init]
        return (weight if weight_init is None else weight_init), (bias if bias_init is None else bias_init)
    if not callable(init):
        raise ArgumentTypeError(f"init must be a preset name or a callable, got {type(init).__name__}")
    if weight_init is not None or bias_init is not None:
        raise ArgumentError("pass either a pair initializer init=... or weight_init=/bias_init=, not both")
    host_weight, host_bias = initial_parameters(init, in_features, out_features, rng)
    return (lambda rng, shape, **_: host_weight), (lambda rng, shape, **_: host_bias)
