"""``Optimizer``: the base of ``SGD``, ``Adam``, ``AdamW``, ``RMSprop`` and ``Adagrad``.

Two forms of one update rule:

- **pure**: ``state = opt.init(params)`` allocates every buffer up front (and a 0-d int32 step
  count); ``new_params, new_state = opt.update(params, grads, state, lr=None)`` computes one
  step without mutating anything and without Python branching on array values, so ``jax.jit``
  traces it with params, grads, state and lr as arguments.
- **stateful** (PyTorch style): ``opt.zero_grad(); model.backward(grad); opt.step()`` reads the
  module's parameters and gradients, runs the same update (with the step count as a Python int,
  so bias corrections are computed in float64 like ``torch.optim``) and rebinds the parameters
  through ``module.set_parameters``. A step that raises changes neither the module nor the
  optimizer.

Hyperparameters live in ``opt.param_groups`` (see ``portable_nn.optim.groups``), a list of
dicts each with ``"params"`` (names), ``"lr"`` and the optimizer's other hyperparameters.

One deliberate difference from PyTorch: ``step()`` raises a ``CallOrderError`` if a parameter
has no gradient, instead of silently skipping it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from .._arrays import as_array
from .._backend import backend_name, convert, device_of, is_lazy, materialize, namespace_of, scalar_like, zeros_like
from .._checks import check_like, check_lr, check_real, shape_str
from .._pickling import get_state, set_state
from .._trusted import is_trusted
from ..errors import (
    ArgumentError,
    ArgumentTypeError,
    CallOrderError,
    DTypeError,
    NamespaceError,
    ShapeError,
)
from ..nn.module import Module
from ..typing import Array
from .groups import build_groups
from .state import load_optimizer_state

__all__ = ["Optimizer", "bias_correction", "flag"]

Buffers = dict[str, dict[str, Array]]
Hyper = dict[str, Any]
Step = Any  # a Python int (stateful step) or a 0-d int32 array (pure update)
_PLAIN = (float, int, bool, tuple)


def flag(name: str, value: Any) -> bool:
    """``value`` if it is a bool, else an ``ArgumentTypeError`` (arrays included: no truth-value ambiguity)."""
    if not isinstance(value, bool):
        raise ArgumentTypeError(f"{name} must be a bool, got {type(value).__name__}")
    return value


class Optimizer:
    """Base class: a module, param groups of validated hyperparameters, per-parameter buffers, a step count.

    Subclasses set ``_LEGACY`` (defaults of hyperparameters older checkpoints lack) and define
    ``_validate(hyper) -> hyper``, ``_buffer_names(hyper)``, ``_initial_buffer(xp, name, p, hyper)``
    (zeros by default) and ``_update_one(xp, p, g, buffers, step, lr, hyper, *, inplace) -> (new_p,
    new_buffers)``, which may update ``buffers``' arrays in place only when ``inplace`` is True (they
    are the optimizer's private arrays then) and never writes ``p`` or ``g``; ``_FAST_PATH`` names a
    multi-tensor update in ``portable_nn.backends.fast_paths``.

    Parameters
    ----------
    module : Module
        The model whose parameters (``module.named_parameters()``) are optimized.
    param_groups : list of dict, optional
        Per-group overrides, see ``portable_nn.optim.groups``.
    foreach : bool or None, optional
        The multi-tensor update (torch only; None: where available).
    **hyperparameters : float, 0-d array or bool
        The subclass's hyperparameters (``lr``, ``momentum``, ``betas``...), validated by it.

    Raises
    ------
    ArgumentTypeError
        ``module`` is no portable_nn ``Module``, or ``foreach`` is no bool (nor None).
    ArgumentError
        The module has no parameters.

    Examples
    --------
    >>> import portable_nn as pnn
    >>> opt = pnn.SGD(pnn.Linear(2, 1, seed=0), lr=0.1)
    >>> isinstance(opt, pnn.Optimizer), opt.step_count, opt.param_groups[0]["params"]
    (True, 0, ['weight', 'bias'])
    """

    _LEGACY: ClassVar[dict[str, Any]] = {}
    _FAST_PATH: ClassVar[str | None] = None  # name of the foreach update in portable_nn.backends.fast_paths

    def __init__(
        self, module: Module, *, param_groups: Any = None, foreach: bool | None = None, **hyperparameters: Any
    ) -> None:
        if not isinstance(module, Module):
            raise ArgumentTypeError(
                f"{type(self).__name__} optimizes a portable_nn Module, got {type(module).__module__}."
                f"{type(module).__qualname__}"
            )
        params = module.named_parameters()
        if not params:
            raise ArgumentError(f"{type(self).__name__}: the module has no parameters to optimize")
        if foreach is not None:
            flag("foreach", foreach)
        self.module = module
        self.foreach = foreach
        defaults = self._validate(hyperparameters)
        self._keys = tuple(defaults)
        self.param_groups, self._members = build_groups(list(params), defaults, param_groups, self._validate)
        self._names = tuple(name for members in self._members for name in members)
        self._state: Buffers = {}
        self._step = 0
        self._private = False  # buffers no one else holds: updated in place (train_step) or donated (jax.jit)
        self._name_set = frozenset(self._names)
        self._fast_cache: tuple[Any, Any] | None = None
        self._lazy_cache: tuple[Any, bool] | None = None
        self._checked: tuple[tuple[Any, ...], list[Hyper]] | None = None
        self._several_groups = len(self._members) > 1
        self._backend: tuple[Any, ...] = (None,)  # (array type, foreach, namespace, fast path, lazy): step_with
        self._stored_first: Any = None  # the first parameter and the buffers step_with stored last
        self._stored_state: Buffers | None = None
        self._structure: tuple[Any, Any] = (None, None)  # (the _groups() list, its structure())

    # ---------------------------------------------------------------- hyperparameters

    def _validate(self, hyper: Mapping[str, Any]) -> Hyper:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def hyperparameters(self) -> Hyper:
        """A copy of the default group's hyperparameters (``lr``, ``momentum``, ...), ``param_groups[0]``."""
        return self._groups()[0].copy()

    @property
    def lr(self) -> float:
        """The default group's learning rate (``param_groups[0]["lr"]``); assignable (validated)."""
        return check_real("lr", self.param_groups[0]["lr"])

    @lr.setter
    def lr(self, value: float) -> None:
        self.param_groups[0]["lr"] = check_lr(value)

    @property
    def step_count(self) -> int:
        """How many ``step()`` calls have succeeded."""
        return self._step

    def _groups(self) -> list[Hyper]:
        """Each group's hyperparameters, validated (cached while ``param_groups`` holds the same plain values)."""
        keys, checked_before = self._keys, self._checked
        if checked_before is not None:  # the hot path: one flat tuple, compared by identity first, then by value
            try:
                flat = tuple([group[key] for group in self.param_groups for key in keys])
            except (KeyError, TypeError):
                flat = None
            try:  # identical objects compare equal without a call; an array among them may refuse to compare
                same = flat is not None and flat == checked_before[0]
            except Exception:
                same = False
            if same:
                return checked_before[1]
        if len(self.param_groups) != len(self._members):
            raise ArgumentError(f"param_groups: expected {len(self._members)} groups, got {len(self.param_groups)}")
        checked = []
        for index, (group, members) in enumerate(zip(self.param_groups, self._members, strict=True)):
            if not isinstance(group, dict) or not {"params", *self._keys} <= set(group):  # extra keys: as torch
                got = sorted(group) if isinstance(group, dict) else type(group).__name__
                raise ArgumentError(f"param_groups[{index}]: expected keys {['params', *self._keys]}, got {got}")
            if list(group["params"]) != list(members):
                raise ArgumentError(
                    f"param_groups[{index}]['params']: the members of a group are fixed at construction"
                )
            checked.append(self._validate_group(f"param_groups[{index}]", {key: group[key] for key in self._keys}))
        snapshot = tuple(group[key] for group in self.param_groups for key in keys)
        plain = all(type(v) in _PLAIN for v in snapshot)  # arrays (0-d hyperparameters) are validated every step
        self._checked = (snapshot, checked) if plain else None
        return checked

    def _group_of(self) -> dict[str, int]:
        return {name: index for index, members in enumerate(self._members) for name in members}

    # ---------------------------------------------------------------- the pure form

    def _buffer_names(self, hyper: Mapping[str, Any]) -> tuple[str, ...]:
        """The per-parameter buffers an update with these hyperparameters keeps."""
        return ()

    def _initial_buffer(self, xp: Any, name: str, p: Array, hyper: Mapping[str, Any]) -> Array:
        return zeros_like(p)  # xp.zeros_like; on JAX built on the host (no compilation per shape)

    def _update_one(
        self,
        xp: Any,
        p: Array,
        g: Array,
        buffers: dict[str, Array],
        step: Step,
        lr: Any,
        hyper: Hyper,
        *,
        inplace: bool = False,
        values: Mapping[str, Any] | None = None,
    ) -> tuple[Array, dict[str, Array]]:  # pragma: no cover - abstract
        """One parameter's update; ``hyper`` decides the structure (flags, which values are 0), ``values``
        (from :meth:`step_scalars`, possibly traced 0-d arrays) the numbers when given, else ``hyper``/``step``."""
        raise NotImplementedError

    # ---------------------------------------------------------------- host numbers (compiled steps)

    def structure(self) -> tuple[Any, ...]:
        """What a compiled update depends on besides numbers: per group, each flag and which values are 0.

        Two calls that return equal structures run the same program: every other change between
        steps (lr, momentum, betas, eps, weight_decay...) is a number, passed by :meth:`step_scalars`.

        Returns
        -------
        tuple of tuple of (str, object) pairs
            Per group, each hyperparameter's name with its flag (bool) or whether it is nonzero
            (bool, or a tuple of them for pairs such as ``betas``); hashable.

        Examples
        --------
        >>> import portable_nn as pnn
        >>> opt = pnn.SGD(pnn.Linear(2, 1, seed=0), lr=0.1, momentum=0.9)
        >>> before = opt.structure()
        >>> opt.param_groups[0]["momentum"] = 0.5
        >>> opt.structure() == before
        True
        """
        groups = self._groups()
        cached = self._structure
        if cached[0] is not groups:  # _groups() returns the same list while nothing changed
            structure = tuple(tuple((key, _static(value)) for key, value in hyper.items()) for hyper in groups)
            cached = self._structure = (groups, structure)
        return cached[1]  # type: ignore[no-any-return]

    def step_scalars(self, count: int) -> list[dict[str, float]]:
        """Per group, every number step ``count`` (1, 2, ...) uses, computed on the host in float64.

        The group's real hyperparameters and what the step count derives from them (Adam's bias
        corrections, Adagrad's decayed lr), from the Python integer ``count`` (no counter to overflow).
        The keys depend only on :meth:`structure`; :meth:`apply` takes these numbers (or 0-d arrays
        of them, e.g. traced by ``jax.jit``).

        Parameters
        ----------
        count : int
            The number of the step to compute (``step_count + 1`` for the next one), >= 1.

        Returns
        -------
        list of dict of str to float
            One dict per param group (in ``param_groups`` order): name -> value.

        Raises
        ------
        ArgumentError
            ``count`` is not an int >= 1 (a bool included).

        Examples
        --------
        >>> import portable_nn as pnn
        >>> opt = pnn.Adam(pnn.Linear(2, 1, seed=0), lr=0.1)
        >>> round(opt.step_scalars(1)[0]["step_size"], 6)
        1.0
        """
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ArgumentError(f"count must be an int >= 1, got {count!r}")
        return [self._scalars(hyper, count) for hyper in self._groups()]

    def _scalars(self, hyper: Mapping[str, Any], count: int) -> dict[str, float]:
        """The numbers of one group at step ``count``: its real hyperparameters (subclasses add derived ones)."""
        return {key: float(value) for key, value in hyper.items() if type(value) is not bool}

    def apply(
        self,
        params: Mapping[str, Array],
        grads: Mapping[str, Array],
        buffers: Mapping[str, Mapping[str, Array]],
        scalars: Sequence[Mapping[str, Any]],
        *,
        inplace: bool = False,
    ) -> tuple[dict[str, Array], Buffers]:
        """One update with the numbers given (``scalars``, from :meth:`step_scalars`): ``(new_params, new_buffers)``.

        Pure unless ``inplace`` (the caller owns ``buffers``); unchecked (callers validate); traceable
        with every argument traced: the structure (flags, which values are 0) comes from ``param_groups``.

        Parameters
        ----------
        params : mapping of str to array
            Every parameter of the module, by name (any shape).
        grads : mapping of str to array
            A gradient per parameter, of its parameter's shape, dtype and placement.
        buffers : mapping of str to mapping of str to array
            ``{param: {buffer: array}}``, each buffer of its parameter's shape (e.g.
            ``init(params)["buffers"]`` or :meth:`current_buffers`).
        scalars : sequence of mapping of str to float or 0-d array
            Per group, the numbers of this step: :meth:`step_scalars` (or 0-d arrays of them).
        inplace : bool, optional
            Update ``buffers``' arrays in place (only when no one else holds them).

        Returns
        -------
        new_params : dict of str to array
            The updated parameters, of the shapes of ``params``.
        new_buffers : dict of str to dict of str to array
            The updated buffers.

        Examples
        --------
        >>> import numpy as np, portable_nn as pnn
        >>> model = pnn.Linear(2, 1, seed=0)
        >>> opt = pnn.SGD(model, lr=0.5)
        >>> params = model.named_parameters()
        >>> grads = {name: np.ones_like(p) for name, p in params.items()}
        >>> new_params, _ = opt.apply(params, grads, opt.init(params)["buffers"], opt.step_scalars(1))
        >>> (params["bias"] - new_params["bias"]).tolist()
        [0.5]
        """
        groups = self._groups()
        xp = namespace_of(params[self._names[0]])
        new_params: dict[str, Array] = {}
        new_buffers: Buffers = {}
        update = self._update_one
        for hyper, numbers, members in zip(groups, scalars, self._members, strict=True):
            for name in members:
                new_params[name], new_buffers[name] = update(
                    xp,
                    params[name],
                    grads[name],
                    dict(buffers[name]),
                    0,
                    numbers["lr"],
                    hyper,
                    inplace=inplace,
                    values=numbers,
                )
        return new_params, new_buffers

    def init(self, params: Mapping[str, Array]) -> dict[str, Any]:
        """The optimizer state for ``params`` (name -> array): every buffer allocated, step count 0.

        Parameters
        ----------
        params : mapping of str to array
            Every parameter of the optimizer's module, by name (``module.named_parameters()``).

        Returns
        -------
        dict
            ``{"step": 0-d int32 array, "buffers": {name: {buffer: array}}}`` on the params'
            backend and device (each buffer of its parameter's shape and dtype); its structure
            never changes during training.

        Raises
        ------
        ArgumentTypeError
            ``params`` is not a mapping.
        ArgumentError
            Missing or unknown parameter names.

        Examples
        --------
        >>> import portable_nn as pnn
        >>> model = pnn.Linear(2, 1, seed=0)
        >>> opt = pnn.SGD(model, lr=0.1, momentum=0.9)
        >>> state = opt.init(model.named_parameters())
        >>> sorted(state["buffers"]["weight"]), int(state["step"])
        (['momentum_buffer'], 0)
        """
        self._check_names("params", params)
        groups, group_of = self._groups(), self._group_of()
        first = params[self._names[0]]
        xp = namespace_of(first)
        buffers = {
            name: {
                key: self._initial_buffer(xp, key, p, groups[group_of[name]])
                for key in self._buffer_names(groups[group_of[name]])
            }
            for name, p in params.items()
        }
        return {"step": scalar_like(0, xp.int32, first), "buffers": buffers}

    def update(
        self, params: Mapping[str, Array], grads: Mapping[str, Array], state: Mapping[str, Any], *, lr: Any = None
    ) -> tuple[dict[str, Array], dict[str, Any]]:
        """One step of the update rule, pure: ``(new_params, new_state)``; nothing is mutated.

        Traceable by ``jax.jit`` with all four arguments traced (hyperparameters other than ``lr``
        are constants of the trace).

        Parameters
        ----------
        params : mapping of str to array
            Every parameter of the optimizer's module, by name (any shapes).
        grads : mapping of str to array
            A gradient per parameter, of its parameter's backend, dtype and shape.
        state : mapping
            ``{"step": 0-d int32 array, "buffers": {name: {buffer: array}}}``, from :meth:`init`
            or a previous ``update``.
        lr : None, float, 0-d array or mapping of str to float or 0-d array, optional
            None: each group's current ``"lr"``; a Python float; a 0-d array (cast to each
            parameter's dtype; may be traced); or a mapping name -> lr for every parameter.

        Returns
        -------
        new_params : dict of str to array
            The updated parameters, of the shapes of ``params``.
        new_state : dict
            ``{"step": step + 1, "buffers": ...}``, of the structure of ``state``.

        Raises
        ------
        ArgumentError
            Missing or unknown names, a ``state`` not from :meth:`init`, buffers other than the
            optimizer's, a non-0-d ``lr`` array.
        ArgumentTypeError
            ``params``, ``grads`` or ``lr`` of the wrong kind.
        NamespaceError, DTypeError, ShapeError
            Gradients or buffers placed, typed or shaped unlike their parameter.

        Examples
        --------
        >>> import numpy as np, portable_nn as pnn
        >>> model = pnn.Linear(2, 1, seed=0)
        >>> opt = pnn.SGD(model, lr=0.1, momentum=0.9)
        >>> params = model.named_parameters()
        >>> grads = {name: np.ones_like(p) for name, p in params.items()}
        >>> new_params, state = opt.update(params, grads, opt.init(params))
        >>> int(state["step"]), state["buffers"]["bias"]["momentum_buffer"].tolist()
        (1, [1.0])
        >>> new_params["bias"] is params["bias"]  # nothing mutated: new arrays
        False
        """
        self._check_names("params", params)
        self._check_names("grads", grads)
        if not isinstance(state, Mapping) or set(state) != {"step", "buffers"}:
            raise ArgumentError("state: expected the mapping {'step': ..., 'buffers': ...} from init() or update()")
        groups, group_of = self._groups(), self._group_of()
        buffers = state["buffers"]
        self._check_names("state['buffers']", buffers)
        lrs = self._lrs(lr, params, groups, group_of)
        trusted = is_trusted()
        if not trusted:
            for name, p in params.items():
                _check_traced(f"grads[{name!r}]", grads[name], p)
                expected = self._buffer_names(groups[group_of[name]])
                if not isinstance(buffers[name], Mapping) or set(buffers[name]) != set(expected):
                    raise ArgumentError(f"state['buffers'][{name!r}]: expected buffers {sorted(expected)}")
                for key, buffer in buffers[name].items():
                    _check_traced(f"state['buffers'][{name!r}][{key!r}]", buffer, p)
            _check_step(state["step"], params[self._names[0]])
        step = state["step"] + 1
        xp = namespace_of(params[self._names[0]])
        new_params: dict[str, Array] = {}
        new_buffers: Buffers = {}
        for name, p in params.items():
            new_params[name], new_buffers[name] = self._update_one(
                xp, p, grads[name], dict(buffers[name]), step, lrs[name], groups[group_of[name]]
            )
        return new_params, {"step": step, "buffers": new_buffers}

    def _check_names(self, what: str, mapping: Any) -> None:
        if not isinstance(mapping, Mapping):
            raise ArgumentTypeError(f"{what}: expected a mapping of parameter name -> array, got {type(mapping)}")
        if len(mapping) != len(self._names) or set(mapping) != set(self._names):
            missing = sorted(set(self._names) - set(mapping))
            unknown = sorted(set(mapping) - set(self._names))
            raise ArgumentError(f"{what}: missing parameters {missing}, unknown parameters {unknown}")

    def _lrs(
        self, lr: Any, params: Mapping[str, Array], groups: list[Hyper], group_of: dict[str, int]
    ) -> dict[str, Any]:
        if lr is None:
            return {name: groups[group_of[name]]["lr"] for name in params}
        if isinstance(lr, Mapping):
            self._check_names("lr", lr)
            return {name: _lr_value(f"lr[{name!r}]", lr[name], params[name]) for name in params}
        return {name: _lr_value("lr", lr, p) for name, p in params.items()}

    # ---------------------------------------------------------------- the stateful form

    def zero_grad(self) -> None:
        """Forget the module's accumulated gradients.

        Examples
        --------
        >>> import portable_nn as pnn
        >>> model = pnn.Linear(2, 1, seed=0)
        >>> opt = pnn.SGD(model, lr=0.1)
        >>> _ = model(model.xp.ones((3, 2), dtype=model.dtype))
        >>> _ = model.backward(model.xp.ones((3, 1), dtype=model.dtype))
        >>> opt.zero_grad()
        >>> model.named_grads()
        {'weight': None, 'bias': None}
        """
        self.module.zero_grad()

    def step(self) -> None:
        """Update every parameter from its gradient (all or nothing): :meth:`step_with` the module's own.

        Raises
        ------
        CallOrderError
            A parameter has no gradient (``backward`` not called since ``zero_grad``).
        NamespaceError, DeviceError, DTypeError, ShapeError
            A gradient placed, typed or shaped unlike its parameter (see :meth:`check_gradients`).

        Examples
        --------
        >>> import portable_nn as pnn
        >>> model = pnn.Linear(2, 1, seed=0)
        >>> opt = pnn.SGD(model, lr=0.5)
        >>> bias = model.named_parameters()["bias"]
        >>> _ = model(model.xp.ones((3, 2), dtype=model.dtype))
        >>> _ = model.backward(model.xp.ones((3, 1), dtype=model.dtype))  # d loss/d bias = 3
        >>> opt.step()
        >>> round(float(bias[0] - model.named_parameters()["bias"][0]), 5), opt.step_count
        (1.5, 1)
        """
        params = self.module.named_parameters()
        grads = self.module._require_grads()
        if not is_trusted():
            self.check_gradients(params, grads)
        self.step_with(params, grads)

    def check_gradients(self, params: Mapping[str, Array], grads: Mapping[str, Any]) -> None:
        """A typed error unless each of ``grads`` is placed, typed and shaped like the parameter of its name.

        Parameters
        ----------
        params : mapping of str to array
            The module's parameters (``module.named_parameters()``).
        grads : mapping of str to array or shape-like
            Gradients, or abstract arrays with ``shape`` and ``dtype`` (a trace's): for those only
            dtype and shape are compared.

        Raises
        ------
        NamespaceError, DeviceError, DTypeError, ShapeError
            Naming the parameter, what was expected and what was given.

        Examples
        --------
        >>> import numpy as np, portable_nn as pnn
        >>> model = pnn.Linear(2, 1, seed=0)
        >>> opt = pnn.SGD(model, lr=0.1)
        >>> params = model.named_parameters()
        >>> opt.check_gradients(params, {"bias": np.zeros(1, np.float32)})  # fine: nothing raised
        >>> opt.check_gradients(params, {"bias": np.zeros(2, np.float32)})
        Traceback (most recent call last):
        ...
        portable_nn.errors.ShapeError: gradient of bias: ...
        """
        xp, device, dtype = self.module.xp, self.module.device, self.module.dtype
        for name, grad in grads.items():
            like = params[name]
            if hasattr(grad, "__array_namespace__") or not hasattr(grad, "shape"):
                check_like(grad, f"gradient of {name}", like, xp, device, dtype)
                continue
            if grad.dtype != like.dtype:
                raise DTypeError(f"gradient of {name}: expected dtype {like.dtype}, got {grad.dtype}")
            if tuple(grad.shape) != tuple(like.shape):
                raise ShapeError(
                    f"gradient of {name}: expected shape {shape_str(like.shape)}, got {shape_str(grad.shape)} "
                    f"(is parameter {name} of the shape its layer declares?)"
                )

    def step_with(self, params: dict[str, Array], grads: Mapping[str, Array], *keep: Array) -> tuple[Array, ...]:
        """:meth:`step` with the module's parameters and their gradients given (checked by the caller).

        Stores the new parameters and buffers, counts the step; on a lazy backend (Dask) the
        arrays ``keep`` (e.g. the loss) are materialized with them, and returned. Inside
        :func:`portable_nn.train_step` (trusted) buffers this optimizer alone holds
        (:attr:`owns_buffers`) are updated in place: no copy per step, and nobody else can see
        the change.

        Parameters
        ----------
        params : dict of str to array
            ``module.named_parameters()``.
        grads : mapping of str to array
            A gradient per parameter.
        *keep : array
            Arrays to store along with the parameters.

        Returns
        -------
        (dict of str to array, tuple of array)
            The new parameters (now the module's) and ``keep``, materialized where the backend is lazy.

        Raises
        ------
        CallOrderError
            If the module's parameters are no longer the optimizer's.

        Examples
        --------
        >>> import numpy as np, portable_nn as pnn
        >>> model = pnn.Linear(2, 1, seed=0)
        >>> opt = pnn.SGD(model, lr=0.5)
        >>> params = model.named_parameters()
        >>> grads = {name: np.ones_like(p) for name, p in params.items()}
        >>> new_params, kept = opt.step_with(params, grads)
        >>> new_params is not params, model.named_parameters()["bias"] is new_params["bias"], kept
        (True, True, ())
        >>> (params["bias"] - new_params["bias"]).tolist(), opt.step_count
        ([0.5], 1)
        """
        extra = keep
        names = self._names
        if params.keys() != self._name_set:
            raise CallOrderError(
                f"the module's parameters {sorted(params)} no longer match the optimizer's {sorted(names)}"
            )
        groups = self._groups()
        first = params[names[0]]
        if first is self._stored_first and self._state is self._stored_state:  # nothing moved since our last step
            buffers = self._state
        else:
            buffers = self._state_on_module(first)
        if not buffers:
            buffers = self.init(params)["buffers"]
        step = self._step + 1
        backend = self._backend
        if backend[0] is not type(first) or backend[1] is not self.foreach:  # cached per array type
            xp = namespace_of(first)
            backend = self._backend = (type(first), self.foreach, xp, self._fast_path(xp), self._lazy(xp))
        _, _, xp, fast, lazy = backend
        inplace = self._private and is_trusted()
        new_params: dict[str, Array] = {}
        new_state: Buffers = {}
        update = self._update_one
        for hyper, members in zip(groups, self._members, strict=True):
            if fast is not None:
                fast(self, members, params, grads, buffers, step, hyper, new_params, new_state, inplace=inplace)
                continue
            lr = hyper["lr"]
            for name in members:
                p = params[name]
                new_params[name], new_state[name] = update(
                    xp, p, grads[name], dict(buffers[name]), step, lr, hyper, inplace=inplace
                )
                if p.ndim == 0:  # NumPy returns scalars from operations on 0-d arrays: keep arrays
                    new_params[name] = as_array(xp, new_params[name])
                    new_state[name] = {key: as_array(xp, value) for key, value in new_state[name].items()}
        if self._several_groups:
            new_params = {name: new_params[name] for name in params}  # the module's order
        if lazy:
            # Lazy backends (Dask): parameters, buffers and extras are stored together, so their shared work
            # runs once and no graph grows with the number of steps.
            keys = [(name, key) for name, group in new_state.items() for key in group]
            stored = materialize(*new_params.values(), *(new_state[name][key] for name, key in keys), *extra)
            new_params = dict(zip(new_params, stored[: len(new_params)], strict=True))
            for (name, key), value in zip(keys, stored[len(new_params) : len(new_params) + len(keys)], strict=True):
                new_state[name][key] = value
            extra = stored[len(new_params) + len(keys) :]
        self.module.set_parameters(new_params)  # validates unless trusted; raises before rebinding
        # Private from now on unless a buffer is a gradient or a parameter (SGD's first momentum buffer is the
        # gradient, which the module may hand out through named_grads).
        private = inplace or not any(
            buffer is grads[name] or buffer is params[name]
            for name, group in new_state.items()
            for buffer in group.values()
        )
        self._state, self._step, self._private = new_state, step, private
        self._stored_first, self._stored_state = new_params[names[0]], new_state
        return new_params, extra

    # ---------------------------------------------------------------- for compiled steps (train_step)

    def current_buffers(self, like: Array | None = None) -> Buffers:
        """The live buffers (``{param: {buffer: array}}``, empty before the first step), placed like the module.

        Not a copy: a caller that hands them out calls :meth:`state_dict` instead (which marks them shared).

        Parameters
        ----------
        like : array, optional
            One of the module's parameters, when the caller has it (cheaper placement check).

        Returns
        -------
        dict of str to dict of str to array
            ``{param: {buffer: array}}``, each buffer of its parameter's shape, on the module's
            backend, device and dtype (converted after ``module.to(...)``).

        Raises
        ------
        PortableNNError
            A buffer that cannot be converted to the module's new placement (nothing changes).

        Examples
        --------
        >>> import portable_nn as pnn
        >>> model = pnn.Linear(2, 1, seed=0)
        >>> opt = pnn.SGD(model, lr=0.1, momentum=0.9)
        >>> opt.current_buffers()
        {}
        >>> _ = model(model.xp.ones((3, 2), dtype=model.dtype))
        >>> _ = model.backward(model.xp.ones((3, 1), dtype=model.dtype))
        >>> opt.step()
        >>> opt.current_buffers()["bias"]["momentum_buffer"].tolist()
        [3.0]
        """
        if like is not None and like is self._stored_first and self._state is self._stored_state:
            return self._state  # stored by our last step with this parameter: placed like it
        return self._state_on_module(like)

    @property
    def owns_buffers(self) -> bool:
        """Whether no one else holds the buffers (never handed out by ``state_dict()``, no gradient among them):
        a compiled step may then donate them, an eager one update them in place."""
        return self._private

    def commit(self, new_params: Mapping[str, Array], new_buffers: Buffers, *, owned: bool) -> None:
        """Store one step computed elsewhere (e.g. by :meth:`apply` in a compiled program).

        Counts the step, keeps ``new_buffers`` and rebinds the module's parameters (validated unless
        trusted; nothing changes if that raises).

        Parameters
        ----------
        new_params : mapping of str to array
            Every parameter of the module, by name, of its current shape, dtype and placement.
        new_buffers : dict of str to dict of str to array
            ``{param: {buffer: array}}``, the buffers after this step.
        owned : bool
            Whether no one else holds ``new_buffers`` (they may then be updated in place or donated).

        Raises
        ------
        PortableNNError
            From ``module.set_parameters``: a parameter missing, unknown or placed, typed or shaped
            unlike the module's (nothing changes).

        Examples
        --------
        >>> import numpy as np, portable_nn as pnn
        >>> model = pnn.Linear(2, 1, seed=0)
        >>> opt = pnn.SGD(model, lr=0.5)
        >>> params = model.named_parameters()
        >>> grads = {name: np.ones_like(p) for name, p in params.items()}
        >>> new_params, new_buffers = opt.apply(params, grads, opt.init(params)["buffers"], opt.step_scalars(1))
        >>> opt.commit(new_params, new_buffers, owned=True)
        >>> opt.step_count, model.named_parameters()["bias"] is new_params["bias"]
        (1, True)
        """
        self.module.set_parameters(new_params)
        self._state, self._step, self._private = new_buffers, self._step + 1, owned
        self._stored_first, self._stored_state = new_params[self._names[0]], new_buffers

    def _lazy(self, xp: Any) -> bool:
        """Whether ``xp`` is a lazy backend (Dask); cached per namespace."""
        cached = self._lazy_cache
        if cached is None or cached[0] is not xp:
            cached = self._lazy_cache = (xp, is_lazy(xp))
        return cached[1]

    def _fast_path(self, xp: Any) -> Any:
        """The multi-tensor update for this backend, or None (generic path); cached per namespace."""
        if self.foreach is False or self._FAST_PATH is None:
            return None
        cached = self._fast_cache
        if cached is not None and cached[0] is xp:
            return cached[1]
        from ..backends.fast_paths import optimizer_fast_path

        fast = optimizer_fast_path(backend_name(xp), self._FAST_PATH)
        if fast is None and self.foreach:
            raise ArgumentError(f"foreach=True: {type(self).__name__} has no multi-tensor path on {backend_name(xp)}")
        self._fast_cache = (xp, fast)
        return fast

    def _state_on_module(self, like: Array | None = None) -> Buffers:
        """The buffers, on the module's current backend, device and dtype.

        After ``module.to(xp=..., device=..., dtype=...)`` the buffers follow the module: they are
        converted (an explicit cast, as the move was; float32 buffers of a module moved to float64
        become float64, never a float32/float64 mix) and the converted copies replace them. If any
        cannot be converted, the error is raised and nothing changes. ``like``: one of the module's
        parameters, when the caller has it (cheaper than asking a container for its placement).
        """
        first = next((buffer for buffers in self._state.values() for buffer in buffers.values()), None)
        if first is None:
            return self._state
        same = like is not None and type(first) is type(like) and first.dtype == like.dtype
        if same and device_of(first) == device_of(like):
            return self._state
        xp, device, dtype = self.module.xp, self.module.device, self.module.dtype
        if namespace_of(first) is xp and first.dtype == dtype and device_of(first) == device:
            return self._state
        moved = {
            name: {key: convert(buffer, xp, device, dtype) for key, buffer in buffers.items()}
            for name, buffers in self._state.items()
        }
        # converted arrays may share memory with the old ones (DLPack; read-only from JAX): not ours to write
        self._state, self._private = moved, False
        return moved

    # ---------------------------------------------------------------- state

    def state_dict(self) -> dict[str, Any]:
        """``{"optimizer", "step", "hyperparameters", "param_groups", "state"}``.

        ``hyperparameters``: the default group's; ``param_groups``: ``[{"params": [names], **hyper}]``;
        ``state``: ``{param: {buffer: array}}`` for parameters that have buffers (empty before the
        first step). The arrays are the live buffers (never mutated, so safe to keep), on the
        module's current placement (they follow ``module.to(...)``).

        Returns
        -------
        dict
            ``{"optimizer": class name, "step": int, "hyperparameters": dict, "param_groups": list of
            dict, "state": {param: {buffer: array}}}``, each buffer of its parameter's shape.

        Examples
        --------
        >>> import portable_nn as pnn
        >>> opt = pnn.SGD(pnn.Linear(2, 1, seed=0), lr=0.1, momentum=0.9)
        >>> state = opt.state_dict()
        >>> state["optimizer"], state["step"], state["hyperparameters"]["momentum"], state["state"]
        ('SGD', 0, 0.9, {})
        >>> state["param_groups"][0]["params"]
        ['weight', 'bias']
        """
        self._state_on_module()
        self._private = False  # handed out: never donated
        groups = self._groups()
        return {
            "optimizer": type(self).__name__,
            "step": self._step,
            "hyperparameters": dict(groups[0]),
            "param_groups": [
                {"params": list(members), **hyper} for members, hyper in zip(self._members, groups, strict=True)
            ],
            "state": {name: dict(buffers) for name, buffers in self._state.items() if buffers},
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a :meth:`state_dict` (also one saved before param groups existed): validated, then applied at once.

        Parameters
        ----------
        state : mapping
            From :meth:`state_dict` (of an optimizer of the same class and parameter names). Buffers
            must be arrays of the module's backend, device and dtype with their parameter's shape.

        Raises
        ------
        SerializationError
            Wrong keys, groups or types (nothing changes).
        NamespaceError, DeviceError, DTypeError, ShapeError
            A buffer placed, typed or shaped unlike its parameter (nothing changes).

        Examples
        --------
        >>> import portable_nn as pnn
        >>> model = pnn.Linear(2, 1, seed=0)
        >>> opt = pnn.SGD(model, lr=0.1, momentum=0.9)
        >>> saved = opt.state_dict()
        >>> opt.lr = 0.5
        >>> opt.load_state_dict(saved)
        >>> opt.lr
        0.1
        """
        load_optimizer_state(self, state)

    def _validate_group(self, what: str, values: Mapping[str, Any]) -> Hyper:
        """A group's hyperparameters as found in ``param_groups`` (or a state dict's), validated.

        The constructor and the ``lr`` setter refuse a negative lr; a value a schedule wrote may be
        any finite number, as in torch (e.g. LinearLR ending at 0 gives -1.9e-18 by rounding): it is
        used as given.
        """
        lr = check_real(f"{what}['lr']", values["lr"])
        hyper = self._validate({**values, "lr": abs(lr)})
        return {**hyper, "lr": lr}

    def __getstate__(self) -> dict[str, Any]:  # pickle/deepcopy: buffers as host copies (portable_nn._pickling)
        # caches of the hot path (array type, namespace, last stored arrays): rebuilt after a round trip
        self._backend, self._stored_first, self._stored_state, self._structure = (None,), None, None, (None, None)
        return get_state(self)

    def __setstate__(self, state: dict[str, Any]) -> None:
        set_state(self, state)

    def __repr__(self) -> str:
        groups = self._groups()
        args = ", ".join(f"{k}={v!r}" for k, v in groups[0].items())
        extra = f", param_groups={len(groups) - 1}" if len(groups) > 1 else ""
        return f"{type(self).__name__}({args}{extra})"


def _static(value: Any) -> Any:
    """A hyperparameter as a compiled program sees it: flags as they are, numbers only as zero or not."""
    if type(value) is bool:
        return value
    if isinstance(value, tuple):
        return tuple(_static(v) for v in value)
    return value != 0


def _check_traced(what: str, x: Any, like: Any) -> None:
    """Namespace, dtype and shape of ``x`` against ``like``; devices too where both are known (not traced)."""
    xp = namespace_of(like)
    try:
        got = namespace_of(x)
    except NamespaceError as exc:
        raise NamespaceError(f"{what}: {exc}") from None
    if got is not xp:
        raise NamespaceError(f"{what}: expected a {backend_name(xp)} array, got a {backend_name(got)} array")
    if x.dtype != like.dtype:
        raise DTypeError(f"{what}: expected dtype {like.dtype}, got {x.dtype} (portable_nn never casts silently)")
    if tuple(x.shape) != tuple(like.shape):
        raise ShapeError(f"{what}: expected shape {shape_str(like.shape)}, got {shape_str(x.shape)}")
    if backend_name(xp) != "jax":  # jax: traced arrays have no device; jit places its arguments itself
        check_like(x, what, like, xp, device_of(like), like.dtype)


def _check_step(step: Any, like: Any) -> None:
    xp = namespace_of(like)
    try:
        got = namespace_of(step)
    except NamespaceError:
        got = None
    if got is not xp or tuple(step.shape) != () or step.dtype != xp.int32:
        raise ArgumentError("state['step']: expected a 0-d int32 array of the parameters' backend (from init())")


def _lr_value(what: str, lr: Any, p: Array) -> Any:
    """A Python float (validated) or a 0-d array cast to ``p``'s dtype (its value may be traced: not checked)."""
    if isinstance(lr, (int, float)) and not isinstance(lr, bool):
        return check_real(what, lr, low=0.0)
    if isinstance(lr, bool) or not hasattr(lr, "shape"):
        raise ArgumentTypeError(f"{what} must be a real number or a 0-d array, got {type(lr).__name__}")
    if tuple(lr.shape) != ():
        raise ArgumentError(f"{what} must be a number or a 0-d array, got an array of shape {shape_str(lr.shape)}")
    xp = namespace_of(p)
    if namespace_of(lr) is not xp:
        raise NamespaceError(f"{what}: expected a {backend_name(xp)} 0-d array, got {backend_name(namespace_of(lr))}")
    if not xp.isdtype(lr.dtype, "real floating"):
        raise DTypeError(f"{what}: expected a real floating 0-d array, got dtype {lr.dtype}")
    return lr if lr.dtype == p.dtype else xp.astype(lr, p.dtype)


def bias_correction(xp: Any, beta: float, step: Step, like: Array) -> Any:
    """``1 - beta**step``: exact float64 for a Python int step, ``-expm1(step·log beta)`` (accurate near 0) traced."""
    if isinstance(step, int):
        return 1 - beta**step
    if beta == 0:
        return 1.0
    return -xp.expm1(xp.astype(step, like.dtype) * math.log(beta))
