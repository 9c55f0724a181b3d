"""``train_step(model, loss_fn, optimizer, *, compile="auto", max_grad_norm=None)``: one call per training batch.

``step = pnn.train_step(model, pnn.CrossEntropyLoss(), pnn.SGD(model, 0.04, 0.9))`` then
``loss = step(x, y)`` per batch. Afterwards the model's parameters and the optimizer's state are
what the eager loop ``loss_fn(model(x), y)``, ``zero_grad()``, ``backward``, ``step()`` would
leave, and the model's gradients are cleared.

How it is fast: the arguments are validated (namespace, device, dtype, shapes; the range of
class targets) once per new *input signature* (types, shapes, dtypes and devices of ``x`` and
``y``, and the model's placement), with the same typed errors as the eager loop (a compiled step
validates by an abstract trace of the untrusted loss-and-gradient, compiling and running no device
op, and checks class targets' range on a host copy of ``y``); afterwards the
step calls the model, the loss and the optimizer with :data:`~portable_nn.nn.grad_mode.UNCHECKED` (no
per-layer or loss checks; the optimizer rebinds the parameters without ``set_parameters``' checks and
updates the buffers it alone holds in place, never one ``state_dict()`` handed out). ``compile="auto"``
compiles where the backend has a compiler that pays (JAX: ``jax.jit`` of the pure function of parameters,
optimizer state and batch, donating the optimizer's private buffers only); elsewhere (NumPy,
torch with its multi-tensor optimizer path, array-api-strict, Dask) it runs eagerly. On Dask the
loss is stored together with the parameters and buffers in one materialize.

State beyond parameters travels explicitly: each step reads ``model.training``, hands the layers
the model's buffers and, in train mode for a model that draws (Dropout), the key of the model's
random stream; it rebinds the buffers the forward returned and advances the stream by one draw
once the step succeeded, as ``model(x)`` does. A compiled program takes buffers and key as
arguments and is compiled per mode. ``max_grad_norm`` clips the gradients' total 2-norm before
the update, as ``clip_grad_norm_`` between ``backward`` and ``step()`` would.

The range of class targets (a value, not a signature) is checked on every eager step, as the
eager loop does; a compiled step cannot read values back without stalling the device, so there
a batch of an already-seen signature with out-of-range targets is not detected (it counts no
loss for those rows): check labels once, up front (e.g. ``CrossEntropyLoss()`` on the whole set).
"""

from __future__ import annotations

import operator
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

from .._backend import backend_name, namespace_of
from .._checks import check_real
from ..backends.fast_paths import step_checker, step_compiler, step_numbers_put, step_signature
from ..errors import ArgumentError, ArgumentTypeError
from ..nn.clip_grad import scaled_to_norm, total_norm
from ..nn.module import UNCHECKED, Module
from ..nn.rng import RandomStream
from ..optim import Optimizer
from ..typing import Array
from ._step_checks import array_device, check_abstractly, returns_a_pair, signature_of
from .functional_model import LossFn, check_params, is_stateful, loss_and_grads_fn
from .program_cache import shared_program, structure_key

__all__ = ["MAX_PROGRAMS", "TrainStep", "train_step"]


def train_step(
    model: Module,
    loss_fn: LossFn,
    optimizer: Optimizer,
    *,
    compile: bool | str = "auto",
    max_grad_norm: float | None = None,
) -> TrainStep:
    """A function ``step(x, y) -> loss`` training ``model`` on one batch: forward, loss, backward, step.

    Parameters
    ----------
    model : Module
        The model; ``optimizer`` must optimize exactly this module.
    loss_fn : callable
        ``loss_fn(prediction, y) -> (loss, dL/dprediction)``, e.g. :class:`~portable_nn.CrossEntropyLoss`.
    optimizer : Optimizer
        E.g. ``pnn.SGD(model, lr=0.04, momentum=0.9)``; its ``param_groups`` are read each step
        (schedulers work): a compiled step takes every number as an argument
        (:meth:`~portable_nn.optim.Optimizer.step_scalars`) and compiles once per
        :meth:`~portable_nn.optim.Optimizer.structure` (flags, which numbers are 0) and input signature.
    compile : {"auto", True, False}
        ``"auto"``: compile where the backend has a compiler that pays (JAX), else eager;
        ``True``: compile, an ``ArgumentError`` where there is no compiler; ``False``: eager.
    max_grad_norm : float or None
        Clip the gradients' total 2-norm to this before each update, as
        ``pnn.clip_grad_norm_(model, max_grad_norm)`` between ``backward`` and ``step()`` would
        (inside the compiled program too); None: no clipping.

    Returns
    -------
    TrainStep
        ``step(x, y)`` returns the batch's loss (a 0-d array of the backend, computed before the
        update) and clears the model's gradients. Calls from several threads take turns (a lock).

    Raises
    ------
    ArgumentTypeError
        ``model``, ``optimizer`` or ``loss_fn`` of the wrong kind; later, from ``step(x, y)``, a
        ``loss_fn`` that does not return a pair.
    ArgumentError
        An optimizer of another module, a bad ``compile``, ``compile=True`` without a compiler.

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
    if not isinstance(optimizer, Optimizer):
        raise ArgumentTypeError(f"expected a portable_nn Optimizer, got {type(optimizer).__name__}")
    if optimizer.module is not model:
        raise ArgumentError("the optimizer optimizes another module than the one given to train_step")
    if not callable(loss_fn):
        raise ArgumentTypeError(f"loss_fn must be callable (prediction, target) -> (loss, grad), got {type(loss_fn)}")
    if compile not in (True, False, "auto") or not isinstance(compile, (bool, str)):
        raise ArgumentError(f"compile must be 'auto', True or False, got {compile!r}")
    if max_grad_norm is not None:
        max_grad_norm = check_real("max_grad_norm", max_grad_norm, low=0.0)
    return TrainStep(model, loss_fn, optimizer, compile, max_grad_norm)


#: compiled programs one TrainStep keeps (one per input signature and optimizer structure); the least recently
#: used is dropped beyond this, with its executables (each new batch size would otherwise keep ~6 MB)
MAX_PROGRAMS = 8


class TrainStep:
    """The callable :func:`train_step` returns: ``step(x, y) -> loss``. ``compiled`` tells whether it compiles.

    Calls are serialized by a lock: threads sharing one ``TrainStep`` take turns (each step sees
    the parameters and optimizer state the previous one left; no update is lost). Build it with
    :func:`train_step`, which validates the arguments.

    Parameters
    ----------
    model : Module
        The model trained; ``optimizer`` optimizes exactly this module.
    loss_fn : callable
        ``loss_fn(prediction, y) -> (loss, dL/dprediction)``.
    optimizer : Optimizer
        The optimizer of ``model``.
    compile : {"auto", True, False}
        As in :func:`train_step`.
    max_grad_norm : float or None
        As in :func:`train_step`.

    Examples
    --------
    >>> import numpy as np, portable_nn as pnn
    >>> model = pnn.Linear(2, 3, seed=0)
    >>> step = pnn.train_step(model, pnn.CrossEntropyLoss(), pnn.SGD(model, lr=0.1), compile=False)
    >>> isinstance(step, pnn.TrainStep), step.compiled
    (True, False)
    >>> loss = step(np.ones((4, 2), np.float32), np.array([0, 1, 2, 1]))
    >>> loss.shape, model.named_grads()["bias"]
    ((), None)
    """

    def __init__(
        self,
        model: Module,
        loss_fn: LossFn,
        optimizer: Optimizer,
        compile: bool | str,
        max_grad_norm: float | None = None,
    ) -> None:
        self.model, self.loss_fn, self.optimizer = model, loss_fn, optimizer
        self.max_grad_norm = max_grad_norm
        self._compile = compile
        self._lock = threading.Lock()
        self._checked_core = loss_and_grads_fn(model, returns_a_pair(loss_fn), validate=True)
        self._core = loss_and_grads_fn(model, loss_fn, validate=False)  # once a signature is checked
        self._seen: set[Hashable] = set()
        self._programs: OrderedDict[Hashable, Callable[..., Any]] = OrderedDict()
        self._written: dict[str, Array] | None = None  # the parameters the last step stored
        self._written_count = 0
        self._placement: Hashable = None  # type, dtype and device of the parameters (checked when they change)
        self._structure: Hashable = None  # program_cache.structure_key (None: programs not shared), per validation
        self._stateful = is_stateful(model)  # buffers or randomness (per validation: a model may gain buffers)
        self._last: tuple[Hashable, Callable[..., Any]] | None = None  # the last step's program key and program
        self._follow(model.xp)

    def _follow(self, xp: Any) -> None:
        """Pick the compiler for the model's backend (again after ``model.to(...)`` moved it to another one)."""
        backend = backend_name(xp)
        compiler = None if self._compile is False else step_compiler(backend)
        if self._compile is True and compiler is None:
            raise ArgumentError(
                f"compile=True: portable_nn has no compiler for the {backend} backend (only jax); "
                "use compile='auto' (compiles where it pays) or compile=False"
            )
        self._xp, self._compiler, self.compiled = xp, compiler, compiler is not None
        self._checker: Callable[..., Any] | None = step_checker(backend) if compiler else None
        self._sign: Callable[[Any, Any], Hashable] | None = step_signature(backend) if compiler else None
        self._put: Callable[[tuple[float, ...], Array], Array] | None = step_numbers_put(backend) if compiler else None
        self._held: tuple[tuple[float, ...], Array] | None = None  # the step's numbers and the array they were put as
        self._seen.clear()
        self._programs.clear()
        self._last = None

    def __call__(self, x: Array, y: Array) -> Array:
        with self._lock:
            model = self.model
            params = model.named_parameters()
            try:  # attributes only (no call; the compiler's own where it has one): the hot path's signature
                sign = self._sign
                signature: Hashable | None = (
                    (type(x), x.shape, x.dtype, x.device, type(y), y.shape, y.dtype, y.device)
                    if sign is None
                    else sign(x, y)
                )
                known = signature in self._seen
            except Exception:  # no .device (Dask), not arrays (of the compiler's backend), unhashable parts
                signature = signature_of(x, y)
                known = signature is not None and signature in self._seen
            written = self._written
            checked = None
            training = model.training
            if (
                not known
                or written is None
                or len(params) != self._written_count
                or not all(map(operator.is_, params.values(), written.values()))  # replaced since our last step
            ):
                if model.xp is not self._xp:  # moved to another backend (its parameters are new: we are here)
                    self._follow(model.xp)
                self._stateful = is_stateful(model)
                first = next(iter(params.values()))
                self._placement = (type(first), first.dtype, array_device(first))
                self._held = None  # the numbers are put again, like the (maybe moved) parameters
                buffers, key, stream = self._state(training, first)
                if self._checker is not None:
                    assert self._checker is not None
                    grads = check_abstractly(
                        self._checker, self._checked_core, model, params, buffers, training, key, x, y
                    )
                else:
                    full = {**params, **buffers} if buffers else params
                    check_params(model, full)  # untrusted: the eager loop's errors
                    checked = self._checked_core(full, x, y, training, key)
                    grads = checked[1]
                self.optimizer.check_gradients(params, grads)  # every parameter, as the eager loop's step()
                if self.compiled:
                    structure = structure_key(model, self.loss_fn, self.optimizer)
                    if structure != self._structure:
                        self._programs.clear()
                        self._last = None
                    self._structure = structure
                if signature is not None:
                    self._seen.add(signature)
            elif self._stateful:
                buffers, key, stream = self._state(training, next(iter(params.values())))
            else:
                buffers, key, stream = {}, None, None
            if self.compiled:
                loss = self._compiled_step(params, buffers, training, key, x, y, signature)
            else:
                loss = self._eager_step(params, buffers, training, key, x, y, checked)
            if stream is not None:  # the step succeeded: the draw is taken, as model(x) takes it
                model._stream = stream.advanced()
            return loss

    def _state(self, training: bool, first: Array) -> tuple[dict[str, Array], Any, RandomStream | None]:
        """The model's buffers, the key of this step (None: the model draws nothing in this mode) and its stream."""
        if not self._stateful:
            return {}, None, None
        model = self.model
        buffers = model.named_buffers()
        if not (training and model._uses_randomness()):
            return buffers, None, None
        stream = model._random_stream()  # the stream model(x) draws from: the same masks as the eager loop
        return buffers, stream.key(xp=namespace_of(first), device=array_device(first)), stream

    def _eager_step(
        self,
        params: dict[str, Array],
        buffers: dict[str, Array],
        training: bool,
        key: Any,
        x: Array,
        y: Array,
        checked: tuple[Array, dict[str, Array], dict[str, Array]] | None,
    ) -> Array:
        """Forward, loss, backward (or the validating run's results), clipping and the optimizer's update."""
        if checked is None:  # unchecked: the signature was validated
            checked = self._core({**params, **buffers} if buffers else params, x, y, training, key)
        loss, grads, updates = checked
        if self.max_grad_norm is not None:
            grads = scaled_to_norm(self._xp, grads, total_norm(self._xp, grads), self.max_grad_norm)
        if updates:
            written, kept = self.optimizer.step_with(params, grads, loss, *updates.values(), call=UNCHECKED)
        else:  # (no star-argument call)
            written, kept = self.optimizer.step_with(params, grads, loss, call=UNCHECKED)
        self._written, self._written_count = written, len(params)
        model = self.model
        if updates:  # rebinding: arrays a user holds are never mutated
            model._set_buffers(dict(zip(updates, kept[1:], strict=True)))
        model.zero_grad()
        return kept[0]

    # ---------------------------------------------------------------- compiled (JAX)

    def _compiled_step(
        self,
        params: dict[str, Array],
        buffers: dict[str, Array],
        training: bool,
        key: Any,
        x: Array,
        y: Array,
        signature: Hashable,
    ) -> Array:
        """One step by a compiled program of (parameters, optimizer buffers, the step's numbers, model buffers, key,
        batch).

        Every number of the optimizer (lr, momentum, betas, eps, weight decay... and Adam's bias
        corrections, from the host's integer step count) is an argument: a changed value compiles
        nothing; so are the model's buffers and the random key (a new mask every step, never one
        baked in). A program is compiled per input signature, train/eval mode,
        :meth:`Optimizer.structure` and clipping, and shared process-wide with every step of the same
        structure (:mod:`portable_nn.training.program_cache`) unless the model, loss or optimizer is not keyable.
        """
        optimizer = self.optimizer
        first = next(iter(params.values()))
        opt_buffers = optimizer.current_buffers(first)
        owned = optimizer.owns_buffers
        if not opt_buffers:
            opt_buffers, owned = optimizer.init(params)["buffers"], True
        structure, names, flat = optimizer.step_numbers(optimizer.step_count + 1)  # cached while nothing changes
        program_key = (
            structure,
            names,
            owned,
            signature,
            self._placement,
            training,
            key is not None,
            self.max_grad_norm,
        )
        last = self._last
        if last is not None and last[0] == program_key:  # the last step's program (compared without hashing)
            program = last[1]
        else:
            program = self._program(program_key, names, training, owned)
            self._last = (program_key, program)
        held = self._held
        if held is None or (held[0] is not flat and held[0] != flat):  # step_numbers: the same tuple while unchanged
            assert self._put is not None
            held = self._held = (flat, self._put(flat, first))  # one transfer
        loss, new_params, new_opt_buffers, updates = program(params, opt_buffers, held[1], buffers, key, x, y)
        optimizer.commit(new_params, new_opt_buffers, owned=True, call=UNCHECKED)
        # jax returns dicts in sorted key order: kept in the module's order for the identity check (built in C)
        written = dict(zip(params, map(new_params.__getitem__, params), strict=True))
        self._written, self._written_count = written, len(params)
        model = self.model
        if updates:
            model._set_buffers(updates)
        model.zero_grad()
        return loss

    def _program(
        self, program_key: Hashable, names: tuple[tuple[str, ...], ...], training: bool, owned: bool
    ) -> Callable[..., Any]:
        """The program of ``program_key``: this step's (most recently used last), else shared or compiled."""
        programs = self._programs
        program = programs.get(program_key)
        if program is None:
            compiler = self._compiler
            assert compiler is not None

            def build() -> Callable[..., Any]:
                return compiler(self._pure_step(names, training), owned)  # type: ignore[no-any-return]

            shared = self._structure
            program = programs[program_key] = (
                build() if shared is None else shared_program((shared, program_key), build)
            )
            if len(programs) > MAX_PROGRAMS:
                programs.popitem(last=False)
        else:
            programs.move_to_end(program_key)
        return program

    def _pure_step(self, names: tuple[tuple[str, ...], ...], training: bool) -> Callable[..., Any]:
        """The whole step as a pure function; ``scalars``: the numbers named by ``names``, group by group.

        A new function each time: nothing a compiler caches by function outlives its program. A
        program shared with other steps is traced from this step's objects: if the compiler traces it
        again (JAX does after ``jax.clear_caches()``) once they changed structure, it raises instead of
        tracing another structure under the old key.
        """
        core, optimizer, model, loss_fn, max_norm = (
            self._core,
            self.optimizer,
            self.model,
            self.loss_fn,
            self.max_grad_norm,
        )
        traced_as = (self._structure, optimizer.structure())
        xp = self._xp

        def pure_step(
            params: dict[str, Array],
            opt_buffers: Any,
            scalars: Array,
            buffers: dict[str, Array],
            key: Any,
            x: Array,
            y: Array,
        ) -> tuple[Array, dict[str, Array], Any, dict[str, Array]]:
            if (
                traced_as[0] is not None
                and (structure_key(model, loss_fn, optimizer), optimizer.structure()) != traced_as
            ):
                raise ArgumentError(
                    "a shared compiled step is traced again but the model, loss or optimizer it was built from "
                    "changed structure since: after jax.clear_caches(), call "
                    "portable_nn.training.program_cache.clear_programs() and build new train_step objects"
                )
            groups, index = [], 0
            for keys in names:
                groups.append({key: scalars[index + offset] for offset, key in enumerate(keys)})
                index += len(keys)
            loss, grads, updates = core({**params, **buffers} if buffers else params, x, y, training, key)
            if max_norm is not None:
                grads = scaled_to_norm(xp, grads, total_norm(xp, grads), max_norm)
            new_params, new_opt_buffers = optimizer.apply(params, grads, opt_buffers, groups)
            return loss, new_params, new_opt_buffers, updates

        return pure_step
