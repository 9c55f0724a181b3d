"""``Linear``: the stateful fully connected layer, ``y = x @ weight.T + bias``, on any array-API backend."""

from __future__ import annotations

from typing import Any

from ._backend import (
    FLOAT_DTYPES,
    convert,
    device_of,
    dtype_name,
    from_host,
    is_torch_module,
    namespace_of,
    resolve_device,
    resolve_dtype,
    resolve_namespace,
    supported_on,
    target_placement,
    torch_linear,
)
from ._checks import check_array, check_features, namespace_of_arg, shape_str
from .errors import ArgumentError, ArgumentTypeError, DTypeError, ShapeError
from .functional import _linear, _linear_backward
from .init import Initializer, Seed, initial_parameters
from .module import Module

__all__ = ["Linear"]

Array = Any


def _check_features_arg(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ArgumentTypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 0:
        raise ArgumentError(f"{name} must be >= 0, got {value}")
    return value


class Linear(Module):
    """Fully connected layer in PyTorch's layout.

    ``weight`` is (out_features, in_features), ``bias`` is (out_features,) or ``None``.
    ``forward(x)`` maps (*, in_features) to (*, out_features) and keeps ``x`` for
    ``backward(grad_output)``, which returns ``grad_x`` and accumulates ``grad_weight`` and
    ``grad_bias``. ``step(lr)`` then applies ``p <- p - lr * grad``.

    Parameters are drawn on the host from ``seed`` (see :mod:`portable_nn.init`) and moved
    to ``xp``/``device`` as ``dtype``, so one seed gives the same bytes on every backend.

    Args:
        in_features: size of the last input axis.
        out_features: size of the last output axis.
        bias: whether the layer has a bias.
        xp: backend name, namespace module, or an array whose namespace to use.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:N"``, or the backend's device object; None = default.
        dtype: ``"float32"`` (default), ``"float64"``, ``"float16"``, ``"bfloat16"`` or a backend dtype.
        seed: int, ``numpy.random.Generator`` or None (fresh entropy).
        init: ``"torch"`` (U(±1/sqrt(in))), ``"glorot_uniform"``, ``"zeros"`` or a callable
            ``init(rng, in_features, out_features) -> (weight, bias)`` returning host arrays.
    """

    _parameter_names = ("weight", "bias")

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
    ) -> None:
        self.in_features = _check_features_arg("in_features", in_features)
        self.out_features = _check_features_arg("out_features", out_features)
        self.xp = resolve_namespace(xp)
        self.device = resolve_device(self.xp, device)
        self.dtype = supported_on(self.xp, self.device, resolve_dtype(self.xp, dtype))
        host_weight, host_bias = initial_parameters(init, in_features, out_features, seed)
        self.weight: Array = from_host(host_weight, self.xp, self.device, self.dtype)
        self.bias: Array | None = from_host(host_bias, self.xp, self.device, self.dtype) if bias else None
        self.grad_weight: Array | None = None
        self.grad_bias: Array | None = None
        self._forget_kept()

    def forward(self, x: Array) -> Array:
        """``y = x @ weight.T + bias``: (*, in_features) -> (*, out_features); keeps ``x`` for backward."""
        check_array(x, "input", self.xp, self.device, self.dtype)
        check_features(x, self.in_features)
        y = _linear(x, self.weight, self.bias)
        self._keep_for_backward((x, y.shape))  # the shape backward expects of grad_output
        return y

    def backward(self, grad_output: Array) -> Array:
        """Given ``dL/dy`` (shape of the last output), accumulate ``grad_weight``/``grad_bias``; return ``dL/dx``."""
        x, expected = self._kept_for_backward()
        check_array(grad_output, "grad_output", self.xp, self.device, self.dtype)
        if grad_output.shape != expected:
            raise ShapeError(
                f"grad_output: expected the last output's shape {shape_str(expected)}, "
                f"got {shape_str(grad_output.shape)}"
            )
        grad_x, grad_weight, grad_bias = _linear_backward(self.xp, grad_output, x, self.weight, self.bias is not None)
        # Accumulate into the fresh gradients (standard in-place add; JAX/Dask rebind), never into the old ones.
        if self.grad_weight is not None:
            grad_weight += self.grad_weight
        if grad_bias is not None and self.grad_bias is not None:
            grad_bias += self.grad_bias
        self.grad_weight, self.grad_bias = grad_weight, grad_bias
        return grad_x

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
        """
        weight = getattr(module, "weight", None)
        if not is_torch_module(module) or weight is None:
            raise ArgumentTypeError(f"from_torch expects a torch.nn.Linear, got {type(module).__name__}")
        return cls.from_arrays(weight, getattr(module, "bias", None), xp=xp, device=device, dtype=dtype)

    def to_torch(self) -> Any:
        """A ``torch.nn.Linear`` holding copies of the parameters, same dtype and device (else torch's default)."""
        weight = convert(self.weight, "torch", copy=True)
        return torch_linear(weight, None if self.bias is None else convert(self.bias, "torch", copy=True))

    # ---------------------------------------------------------------- display

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()}, {self._placement()})"
