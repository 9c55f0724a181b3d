"""``train_step(model, loss_fn, optimizer, *, compile="auto")``: one call per batch for forward, loss, backward, step.

``step = pnn.train_step(model, pnn.CrossEntropyLoss(), pnn.SGD(model, 0.04, 0.9))`` then
``loss = step(x, y)`` per batch. Afterwards the model's parameters and the optimizer's state are
what the eager loop ``loss_fn(model(x), y)``, ``zero_grad()``, ``backward``, ``step()`` would
leave, and the model's gradients are cleared.

How it is fast: the arguments are validated (namespace, device, dtype, shapes; the range of
class targets) once per new *input signature* (types, shapes, dtypes and devices of ``x`` and
``y``, and the model's placement), with the same typed errors as the eager loop (a compiled step
validates by an abstract trace of the untrusted loss-and-gradient, compiling and running no device
op, and checks class targets' range on a host copy of ``y``); afterwards the
step runs inside :func:`portable_nn._trusted.trusted`, which skips per-layer checks, Sequential's
transaction snapshots and ``set_parameters``' checks, and lets the optimizer update the buffers
it alone holds in place (never one ``state_dict()`` handed out). ``compile="auto"`` compiles where the
backend has a compiler that pays (JAX: ``jax.jit`` of the pure function of parameters,
optimizer state and batch, donating the optimizer's private buffers only); elsewhere (NumPy,
torch with its multi-tensor optimizer path, array-api-strict, Dask) it runs eagerly. On Dask the
loss is stored together with the parameters and buffers in one materialize.

The range of class targets (a value, not a signature) is checked on every eager step, as the
eager loop does; a compiled step cannot read values back without stalling the device, so there
a batch of an already-seen signature with out-of-range targets is not detected (it counts no
loss for those rows): check labels once, up front (e.g. ``CrossEntropyLoss()`` on the whole set).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

from ._backend import backend_name, device_of, namespace_of, scalar_like
from ._trusted import checked_trace, trusted
from .errors import ArgumentError, ArgumentTypeError
from .fast_paths import step_checker, step_compiler
from .functional_model import LossFn, loss_and_grads_fn, value_and_grad
from .module import UNCHECKED, Module
from .optim import Optimizer

__all__ = ["TrainStep", "train_step"]

Array = Any


def train_step(model: Module, loss_fn: LossFn, optimizer: Optimizer, *, compile: bool | str = "auto") -> TrainStep:
    """A function ``step(x, y) -> loss`` training ``model`` on one batch: forward, loss, backward, step.

    Parameters
    ----------
    model : Module
        The model; ``optimizer`` must optimize exactly this module.
    loss_fn : callable
        ``loss_fn(prediction, y) -> (loss, dL/dprediction)``, e.g. :class:`~portable_nn.CrossEntropyLoss`.
    optimizer : Optimizer
        E.g. ``pnn.SGD(model, lr=0.04, momentum=0.9)``; its ``param_groups`` lrs are read each step
        (schedulers work), changing another hyperparameter recompiles.
    compile : {"auto", True, False}
        ``"auto"``: compile where the backend has a compiler that pays (JAX), else eager;
        ``True``: compile, an ``ArgumentError`` where there is no compiler; ``False``: eager.

    Returns
    -------
    TrainStep
        ``step(x, y)`` returns the batch's loss (a 0-d array of the backend, computed before the
        update) and clears the model's gradients.

    Examples
    --------
    >>> import numpy as np, portable_nn as pnn
    >>> model = pnn.Sequential(pnn.Linear(2, 8, seed=0), pnn.Tanh(), pnn.Linear(8, 3, seed=1))
    >>> step = pnn.train_step(model, pnn.CrossEntropyLoss(), pnn.SGD(model, lr=0.1, momentum=0.9))
    >>> x, y = np.ones((4, 2), np.float32), np.array([0, 1, 2, 1])
    >>> first, second = float(step(x, y)), float(step(x, y))
    >>> second < first, model.grad_weight if hasattr(model, "grad_weight") else None
    (True, None)
    """
    if not isinstance(model, Module):
        raise ArgumentTypeError(
            f"expected a portable_nn Module, got {type(model).__module__}.{type(model).__qualname__}"
        )
    if model.named_buffers() or model._uses_randomness():
        raise ArgumentError(
            f"train_step does not carry buffers, train/eval mode or random keys yet, and {type(model).__name__} "
            "has buffers or draws random numbers (BatchNorm, Dropout): a compiled step would bake them in. "
            "Train it with model(x), loss, model.backward and optimizer.step() instead"
        )
    if not isinstance(optimizer, Optimizer):
        raise ArgumentTypeError(f"expected a portable_nn Optimizer, got {type(optimizer).__name__}")
    if optimizer.module is not model:
        raise ArgumentError("the optimizer optimizes another module than the one given to train_step")
    if not callable(loss_fn):
        raise ArgumentTypeError(f"loss_fn must be callable (prediction, target) -> (loss, grad), got {type(loss_fn)}")
    if compile not in (True, False, "auto") or not isinstance(compile, (bool, str)):
        raise ArgumentError(f"compile must be 'auto', True or False, got {compile!r}")
    backend = backend_name(model.xp)
    compiler = None if compile is False else step_compiler(backend)
    if compile is True and compiler is None:
        raise ArgumentError(
            f"compile=True: portable_nn has no compiler for the {backend} backend (only jax); "
            "use compile='auto' (compiles where it pays) or compile=False"
        )
    return TrainStep(model, loss_fn, optimizer, compiler)


class TrainStep:
    """The callable :func:`train_step` returns: ``step(x, y) -> loss``. ``compiled`` tells whether it compiles."""

    def __init__(self, model: Module, loss_fn: LossFn, optimizer: Optimizer, compiler: Any) -> None:
        self.model, self.loss_fn, self.optimizer = model, loss_fn, optimizer
        self.compiled = compiler is not None
        self._compiler = compiler
        self._checker: Callable[..., Any] | None = step_checker(backend_name(model.xp)) if compiler else None
        self._loss_and_grads = value_and_grad(model, loss_fn)
        self._unchecked_loss_and_grads = loss_and_grads_fn(model, loss_fn, UNCHECKED)  # once a signature is checked
        self._seen: set[Hashable] = set()
        self._jitted: dict[Hashable, Callable[..., Any]] = {}
        self._lrs: tuple[tuple[float, ...], tuple[Array, ...]] | None = None
        self._key: tuple[Any, Hashable] | None = None
        self._own_buffers: tuple[Any, Hashable] | None = None  # (buffers the last compiled step made, signature)
        self._step_array: tuple[int, Array] | None = None

    def __call__(self, x: Array, y: Array) -> Array:
        params = self.model.named_parameters()
        signature = self._signature(x, y, params)
        checked = None
        if signature is None or signature not in self._seen:
            if self._checker is not None:
                self._check_abstractly(params, x, y)  # the same typed errors, without device ops
            else:
                checked = self._loss_and_grads(params, x, y)  # untrusted: every typed error of the eager loop
            if signature is not None:
                self._seen.add(signature)
        if self.compiled:
            return self._compiled_step(params, x, y, signature)
        with trusted():
            loss, grads = checked if checked is not None else self._unchecked_loss_and_grads(params, x, y)
            (loss,) = self.optimizer._apply(params, grads, loss)
        self.model.zero_grad()
        return loss

    def _signature(self, x: Array, y: Array, params: dict[str, Array]) -> Hashable | None:
        """Types, shapes, dtypes and devices of ``x``, ``y`` and the parameters (all placed alike: one stands in)."""
        first = next(iter(params.values()))
        try:
            signature = (
                type(x),
                tuple(x.shape),
                x.dtype,
                _device(x),
                type(y),
                tuple(y.shape),
                y.dtype,
                _device(y),
                type(first),
                first.dtype,
                _device(first),
                len(params),
            )
            hash(signature)
        except Exception:  # not arrays, or unhashable parts: validate every call
            return None
        return signature

    # ---------------------------------------------------------------- compiled (JAX)

    def _check_abstractly(self, params: dict[str, Array], x: Array, y: Array) -> None:
        """Validate a new signature as the eager loop would, by an abstract trace (no device op, nothing compiled).

        The untrusted loss-and-gradient runs under the backend's abstract trace
        (:func:`portable_nn.fast_paths.step_checker`) inside :class:`portable_nn._trusted.checked_trace`:
        every namespace, dtype, shape and device check raises as in the eager loop, and the range
        of class targets is checked on a host copy of ``y``. ``x`` or ``y`` that is no array of the
        parameters' backend and device enters the trace concrete (its check raises there); if then
        nothing raised, or a value check could not run, the eager validation decides.
        """
        first = next(iter(params.values()))
        xp, device = namespace_of(first), _device(first)
        traced = [_placed_like(a, xp, device) for a in (x, y)]

        def probe(params: dict[str, Array], *args: Array) -> tuple[Array, Any]:
            given = iter(args)
            tx, ty = (next(given) if on else a for a, on in zip((x, y), traced, strict=True))
            concrete = {id(t): a for t, a, on in ((tx, x, traced[0]), (ty, y, traced[1])) if on}
            with checked_trace(concrete, device) as unchecked:
                out = self._loss_and_grads(params, tx, ty)
            not_run.extend(unchecked)
            return out

        not_run: list[str] = []
        assert self._checker is not None
        self._checker(probe, params, *(a for a, on in zip((x, y), traced, strict=True) if on))
        if not_run or not all(traced):
            self._loss_and_grads(params, x, y)  # untrusted, eager: the eager loop's own checks decide

    def _compiled_step(self, params: dict[str, Array], x: Array, y: Array, signature: Hashable) -> Array:
        optimizer, model = self.optimizer, self.model
        groups = optimizer._groups()
        if (
            self._own_buffers is not None
            and self._own_buffers[0] is optimizer._state
            and self._own_buffers[1] == signature
        ):
            buffers = optimizer._state  # made by the last compiled step, placed like the parameters
        else:
            buffers = optimizer._state_on_module(next(iter(params.values())))
        private = optimizer._private
        if not buffers:
            buffers, private = optimizer.init(params)["buffers"], True
        if self._key is None or self._key[0] is not groups:  # _groups() returns one list while nothing changed
            self._key = (groups, tuple(tuple((k, v) for k, v in hyper.items() if k != "lr") for hyper in groups))
        key = (self._key[1], private)
        jitted = self._jitted.get(key)
        if jitted is None:
            jitted = self._jitted[key] = self._compiler(self._pure_step, private)
        loss, new_params, new_buffers, new_step = jitted(
            params, buffers, self._step(params), self._lr_arrays(groups, params), x, y
        )
        model._rebind_parameters(new_params)  # computed from the checked parameters
        optimizer._state, optimizer._step, optimizer._private = new_buffers, optimizer._step + 1, True
        self._step_array = (optimizer._step, new_step)
        self._own_buffers = (new_buffers, signature) if signature is not None else None
        model.zero_grad()
        return loss

    def _pure_step(
        self, params: dict[str, Array], buffers: Any, step: Array, lrs: tuple[Array, ...], x: Array, y: Array
    ) -> tuple[Array, dict[str, Array], Any, Array]:
        """The whole step as a pure function; ``lrs``: one 0-d array per param group (traced: no recompiles)."""
        group_of = self.optimizer._group_of()
        lr = {name: lrs[group_of[name]] for name in params}
        with trusted(tracing=True):
            loss, grads = self._unchecked_loss_and_grads(params, x, y)
            new_params, state = self.optimizer.update(params, grads, {"step": step, "buffers": buffers}, lr=lr)
        return loss, new_params, state["buffers"], state["step"]

    def _step(self, params: dict[str, Array]) -> Array:
        count = self.optimizer._step
        if self._step_array is not None and self._step_array[0] == count:
            return self._step_array[1]
        first = next(iter(params.values()))
        return scalar_like(count, namespace_of(first).int32, first)  # built on the host: no compilation

    def _lr_arrays(self, groups: list[dict[str, Any]], params: dict[str, Array]) -> tuple[Array, ...]:
        lrs = tuple(hyper["lr"] for hyper in groups)
        if self._lrs is None or self._lrs[0] != lrs:
            first = next(iter(params.values()))
            self._lrs = (lrs, tuple(scalar_like(lr, first.dtype, first) for lr in lrs))
        return self._lrs[1]


def _placed_like(a: Any, xp: Any, device: Any) -> bool:
    """Whether ``a`` is an array of namespace ``xp`` on ``device`` (anything else: False, never an error)."""
    try:
        return namespace_of(a) is xp and _device(a) == device
    except Exception:  # not an array: the checks inside the trace say so
        return False


def _device(x: Array) -> Any:
    """``x.device`` where it is an attribute (~0.1-0.4 µs), else :func:`portable_nn._backend.device_of`."""
    device = getattr(x, "device", None)
    return device_of(x) if device is None or callable(device) else device
