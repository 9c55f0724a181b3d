"""The pure form of :class:`~portable_nn.optim.Optimizer` (``init``, ``update``, ``apply``) and its host numbers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from .._backend import backend_name, device_of, namespace_of, scalar_like
from .._checks import check_like, check_real, shape_str
from ..errors import (
    ArgumentError,
    ArgumentTypeError,
    DTypeError,
    NamespaceError,
    ShapeError,
)
from ..typing import Array
from ._core import Buffers, Hyper, _OptimizerCore


class _PureForm(_OptimizerCore):
    """The pure form of :class:`~portable_nn.optim.Optimizer`: ``init``, ``update``, ``apply``, ``step_scalars``."""

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

    def step_numbers(self, count: int) -> tuple[tuple[Any, ...], tuple[tuple[str, ...], ...], tuple[float, ...]]:
        """:meth:`structure`, and :meth:`step_scalars` ``(count)`` as names per group and one flat tuple of values.

        What a compiled step takes on every call, cached (all three are immutable): computed again
        only when ``param_groups`` changed (any value a user or a scheduler wrote) or the step
        count changes a derived number (Adam's bias corrections; SGD's only at the first step).

        Parameters
        ----------
        count : int
            The number of the step to compute (``step_count + 1`` for the next one), >= 1.

        Returns
        -------
        structure : tuple
            :meth:`structure`.
        names : tuple of tuple of str
            Per group, the keys of its :meth:`step_scalars` dict, in order.
        values : tuple of float
            Every group's values, group after group, in the order of ``names``.

        Raises
        ------
        ArgumentError
            ``count`` is not an int >= 1 (a bool included).

        Examples
        --------
        >>> import portable_nn as pnn
        >>> opt = pnn.SGD(pnn.Linear(2, 1, seed=0), lr=0.1, momentum=0.9)
        >>> structure, names, values = opt.step_numbers(2)
        >>> structure == opt.structure(), names[0][:2], values[:2]
        (True, ('lr', 'momentum'), (0.1, 0.9))
        >>> opt.lr = 0.5
        >>> opt.step_numbers(2)[2][:2]
        (0.5, 0.9)
        """
        groups = self._groups()
        if type(count) is not int or count < 1:  # step_scalars raises (or takes an int subclass): nothing cached
            return self._numbers_of(self.step_scalars(count))
        # a step count from which the numbers stop changing, vouched for by the class whose _scalars is in use
        vouched, since = self._SCALARS_CONSTANT_FROM
        key = since if count > since and type(self)._scalars is vouched else count
        cached = self._numbers
        if cached is not None and cached[0] is groups and cached[1] == key:
            return cached[2]  # type: ignore[no-any-return]
        numbers = self._numbers_of(self.step_scalars(count))
        self._numbers = (groups, key, numbers)
        return numbers

    def _numbers_of(
        self, scalars: list[dict[str, float]]
    ) -> tuple[tuple[Any, ...], tuple[tuple[str, ...], ...], tuple[float, ...]]:
        """:meth:`step_numbers` of these :meth:`step_scalars`."""
        names = tuple(tuple(group) for group in scalars)
        return self.structure(), names, tuple(value for group in scalars for value in group.values())

    def _scalars(self, hyper: Mapping[str, Any], count: int) -> dict[str, float]:
        """The numbers of one group at step ``count``: its real hyperparameters (subclasses add derived ones)."""
        return {key: float(value) for key, value in hyper.items() if type(value) is not bool}

    #: (a ``_scalars`` function, n): that function returns the same numbers for every count >= n (for the same
    #: hyperparameters); a subclass that defines another ``_scalars`` is not covered unless it sets its own pair
    _SCALARS_CONSTANT_FROM: ClassVar[tuple[Any, int]] = (_scalars, 1)

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
