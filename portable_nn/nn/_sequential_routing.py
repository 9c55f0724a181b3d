"""How a ``Sequential`` routes names to its layers: parameters, gradients and buffers named ``"<index>.<name>"``.

:class:`SequentialRouting` holds the methods :class:`portable_nn.Sequential` inherits for reading and
rebinding its layers' parameters, gradients and buffers under PyTorch's names (``"0.weight"``, ``"2.bias"``),
all or nothing across layers; nothing in them runs a forward or backward.

The methods that run on every training step (``named_parameters``, ``named_buffers``, ``zero_grad``,
``_rebind_parameters``) read and write a layer's attributes directly where the layer keeps
:class:`~portable_nn.Module`'s own method (parameter ``name`` is ``layer.__dict__[name]``,
its gradient ``layer.__dict__["grad_" + name]``), and call the layer's method otherwise (nested
models, layers that override it): the same result, without a call per layer.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..errors import UnknownParameterError
from ..typing import Array
from ._module_buffers import ModuleBuffers
from ._module_params import ModuleParameters
from ._module_state import NAMES_EPOCH
from .module import Module

__all__ = ["SequentialRouting"]


class SequentialRouting(Module):
    """Name-routing methods of :class:`portable_nn.Sequential` (a base class; not used on its own)."""

    layers: tuple[Module, ...]

    if TYPE_CHECKING:  # provided by Sequential

        def _transaction(self, call: Any, *args: Any) -> Any: ...

    def named_buffers(self) -> dict[str, Array]:
        """``"<index>.<name>"`` -> live buffer array, layer by layer (see :meth:`Module.named_buffers`).

        Returns
        -------
        dict of str to array
            Each layer's buffers, prefixed by its index.

        Examples
        --------
        >>> import portable_nn as pnn
        >>> list(pnn.Sequential(pnn.Linear(2, 2, seed=0), pnn.BatchNorm1d(2)).named_buffers())
        ['1.running_mean', '1.running_var', '1.num_batches_tracked']
        """
        buffers: dict[str, Array] = {}
        for index, layer in enumerate(self.layers):  # a plain loop: run on every forward
            kind = type(layer)
            if not layer._buffer_names and kind.named_buffers is _NAMED_BUFFERS and kind._child_modules is _NO_CHILDREN:
                continue  # a layer without buffers (no call)
            layer_buffers = layer.named_buffers()
            for name in layer_buffers:
                buffers[_join_name(index, name)] = layer_buffers[name]
        return buffers

    def _add_grads(self, grads: Mapping[str, Array]) -> None:
        routed: list[dict[str, Array]] = [{} for _ in self.layers]
        for key, grad in grads.items():
            index, rest = _split_name(key)
            routed[index][rest] = grad
        for layer, layer_grads in zip(self.layers, routed, strict=True):
            if layer_grads:
                layer._add_grads(layer_grads)

    def _plan(self, params: Mapping[str, Array]) -> RoutePlan:
        """The :data:`RoutePlan` of ``params``' names (built once per sequence of names: a few are kept)."""
        keys = tuple(params)
        plans: dict[tuple[str, ...], RoutePlan] | None = self.__dict__.get("_route_plans")
        plan = None if plans is None else plans.get(keys)
        if plan is None or plan[1] != self.layers:  # (!=: torch.compile traces it)
            if plans is None or len(plans) >= _PLANS:
                plans = self.__dict__["_route_plans"] = {}
            plan = plans[keys] = _build_plan(keys, self.layers)
        return plan

    def _route(self, params: Mapping[str, Array], plan: RoutePlan) -> list[dict[str, Array]]:
        """Each layer's share of ``params`` under its own names (``plan``: :meth:`_plan` of ``params``)."""
        routed: list[dict[str, Array]] = []
        for pairs in plan[2]:  # plain loops: run twice on every step
            layer_params: dict[str, Array] = {}
            for name, key in pairs:
                layer_params[name] = params[key]
            routed += (layer_params,)
        return routed

    # ---------------------------------------------------------------- parameters and grads

    def named_parameters(self) -> dict[str, Array]:
        """``"<index>.<name>"`` -> live parameter array, layer by layer.

        Returns
        -------
        dict of str to array
            Each layer's :meth:`~portable_nn.Module.named_parameters`, prefixed by its index.

        Examples
        --------
        >>> import portable_nn as pnn
        >>> model = pnn.Sequential(pnn.Linear(2, 3, seed=0), pnn.ReLU(), pnn.Linear(3, 1, seed=1))
        >>> list(model.named_parameters())
        ['0.weight', '0.bias', '2.weight', '2.bias']
        """
        params: dict[str, Array] = {}
        for attributes, name, key in self._slots()[2]:  # one flat loop: run on every step
            if attributes is not None:
                value = attributes[name]
                if value is not None:
                    params[key] = value
            else:  # a nested model, or a layer with its own named_parameters (``name`` is the layer)
                layer_params = name.named_parameters()
                for layer_name in layer_params:
                    params[_join_name(key, layer_name)] = layer_params[layer_name]
        return params

    def _slots(self) -> Slots:
        """The flat :data:`Slots` of the layers (built again when the layers or any declared parameter changed)."""
        slots: Slots | None = self.__dict__.get("_parameter_slots")
        if slots is None or slots[1] != NAMES_EPOCH[0] or slots[0] != self.layers:  # (!=: torch.compile traces it)
            slots = self.__dict__["_parameter_slots"] = _build_slots(self.layers)
        return slots

    def named_grads(self) -> dict[str, Array | None]:
        """``"<index>.<name>"`` -> accumulated gradient (``None`` before any backward).

        Returns
        -------
        dict of str to array or None
            One entry per name of :meth:`named_parameters`.

        Examples
        --------
        >>> import portable_nn as pnn
        >>> model = pnn.Sequential(pnn.Linear(2, 3, seed=0), pnn.ReLU(), pnn.Linear(3, 1, seed=1))
        >>> model.named_grads()["2.bias"] is None
        True
        >>> _ = model.backward(model.xp.ones_like(model(model.xp.ones((4, 2), dtype=model.dtype))))
        >>> model.named_grads()["2.bias"].tolist()
        [4.0]
        """
        return {f"{i}.{name}": g for i, layer in enumerate(self.layers) for name, g in layer.named_grads().items()}

    def zero_grad(self) -> None:
        """Forget every layer's accumulated gradients.

        Examples
        --------
        >>> import portable_nn as pnn
        >>> model = pnn.Sequential(pnn.Linear(2, 3, seed=0), pnn.ReLU(), pnn.Linear(3, 1, seed=1))
        >>> _ = model.backward(model.xp.ones_like(model(model.xp.ones((4, 2), dtype=model.dtype))))
        >>> model.zero_grad()
        >>> set(model.named_grads().values())
        {None}
        """
        for attributes, key, layer in self._slots()[3]:  # one flat loop: run on every step
            if attributes is not None:
                attributes[key] = None
            else:  # a nested model, or a layer with its own zero_grad
                layer.zero_grad()

    def set_parameters(self, values: Mapping[str, Array]) -> None:
        """Rebind parameters named ``"<index>.<name>"`` in the layers, all or nothing.

        Parameters
        ----------
        values : mapping of str to array
            ``"<index>.<name>"`` -> new value, placed and shaped like that parameter.

        Raises
        ------
        UnknownParameterError
            A name is no parameter of the model (nothing changes).
        NamespaceError, DeviceError, DTypeError, ShapeError
            A value does not fit its parameter (nothing changes, in any layer).

        Examples
        --------
        >>> import portable_nn as pnn
        >>> model = pnn.Sequential(pnn.Linear(2, 1, seed=0), pnn.Tanh())
        >>> model.set_parameters({"0.bias": model.xp.zeros((1,), dtype=model.dtype)})
        >>> model[0].bias.tolist()
        [0.0]
        """
        routed = self._route_known(values)

        def apply() -> None:
            for index, layer_values in routed.items():
                self.layers[index].set_parameters(layer_values)

        self._transaction(apply)

    def _rebind_parameters(self, values: Mapping[str, Array]) -> None:
        """:meth:`set_parameters` without validation (names and values come from this model's checked ones)."""
        direct, others = self._plan(values)[5]
        for attributes, name, key in direct:  # one flat loop over the layers keeping Module's own rebinding
            attributes[name] = values[key]
        for layer, pairs in others:  # a nested model, or a layer with its own rebinding
            layer._rebind_parameters({name: values[key] for name, key in pairs})

    def _route_known(self, values: Mapping[str, Array]) -> dict[int, dict[str, Array]]:
        """``{"<index>.<name>": value}`` -> ``{index: {name: value}}``; an unknown name is an UnknownParameterError."""
        known = self.named_parameters()
        routed: dict[int, dict[str, Array]] = {}
        for key, value in values.items():
            if key not in known:
                raise UnknownParameterError(f"Sequential has no parameter {key!r}; parameters: {list(known)}")
            head, _, rest = key.partition(".")
            routed.setdefault(int(head), {})[rest] = value
        return routed

    # ---------------------------------------------------------------- gradients (rebinding)

    def set_grads(self, values: Mapping[str, Array]) -> None:
        """Rebind gradients named ``"<index>.<name>"`` in the layers, all or nothing (see :meth:`Module.set_grads`).

        Parameters
        ----------
        values : mapping of str to array
            Gradient name (a key of :meth:`named_parameters`) -> array shaped and placed like that
            parameter. Names not given keep their gradient.

        Raises
        ------
        UnknownParameterError
            A name is no parameter of the model (nothing changes).

        Examples
        --------
        >>> import portable_nn as pnn
        >>> model = pnn.Sequential(pnn.Linear(2, 3, seed=0), pnn.ReLU(), pnn.Linear(3, 1, seed=1))
        >>> model.set_grads({"2.bias": model.xp.ones((1,), dtype=model.dtype)})
        >>> model.layers[2].grad_bias.tolist()
        [1.0]
        """
        routed = self._route_known(values)

        def apply() -> None:
            for index, layer_values in routed.items():
                self.layers[index].set_grads(layer_values)

        self._transaction(apply)


# Module's own methods: a layer that keeps one reads or writes its parameters and gradients as attributes
# (``__dict__[name]``, ``__dict__["grad_" + name]``, by ``_parameter_names``), which a container may do for it
_NAMED_PARAMETERS, _ZERO_GRAD = ModuleParameters.named_parameters, ModuleParameters.zero_grad
_REBIND, _NAMED_BUFFERS, _NO_CHILDREN = (
    ModuleParameters._rebind_parameters,
    ModuleBuffers.named_buffers,
    ModuleBuffers._child_modules,
)


#: A Sequential's parameters as one flat list, built by :func:`_build_slots`: ``(layers, epoch, params, grads)``:
#: the layers and :data:`~portable_nn.nn._module_state.NAMES_EPOCH` it was built at; per parameter of a layer
#: keeping Module's own ``named_parameters`` ``(layer.__dict__, name, "<index>.<name>")``, for any other layer
#: ``(None, layer, index)``; per gradient of a layer keeping Module's own ``zero_grad``
#: ``(layer.__dict__, "grad_<name>", None)``, for any other ``(None, "", layer)``.
Slots = tuple[
    tuple[Module, ...],
    int,
    list[tuple[Any, Any, Any]],
    list[tuple[Any, str, Any]],
]


def _build_slots(layers: tuple[Module, ...]) -> Slots:
    """The :data:`Slots` of ``layers``."""
    params: list[tuple[Any, Any, Any]] = []
    grads: list[tuple[Any, str, Any]] = []
    for index, layer in enumerate(layers):
        kind = type(layer)
        if kind.named_parameters is _NAMED_PARAMETERS:
            attributes = layer.__dict__
            params += [(attributes, name, key) for name, key in _joined(index, layer._parameter_names)]
        else:
            params.append((None, layer, index))
        if kind.zero_grad is _ZERO_GRAD:
            attributes = layer.__dict__
            grads += [(attributes, key, None) for key in _grad_names(layer._parameter_names)]
        else:
            grads.append((None, "", layer))
    return layers, NAMES_EPOCH[0], params, grads


#: route plans a Sequential keeps (one per sequence of names: parameters, parameters and buffers...)
_PLANS = 8

#: How one sequence of names routes, built by :func:`_build_plan`: ``(names, layers, pairs, full, order, rebind)``:
#: the names, the layers it was built for, per layer its ``(name, "<index>.<name>")`` pairs, per layer
#: ``{name: "<index>.<name>"}``, the ``(index, name, "<index>.<name>")`` of every name in order, and how
#: ``_rebind_parameters`` writes them: ``(layer.__dict__, name, "<index>.<name>")`` for every name of a layer
#: keeping Module's own rebinding (one flat loop), ``(layer, pairs)`` for the others.
RoutePlan = tuple[
    tuple[str, ...],
    tuple[Module, ...],
    list[list[tuple[str, str]]],
    list[dict[str, str]],
    list[tuple[int, str, str]],
    tuple[list[tuple[dict[str, Any], str, str]], list[tuple[Module, list[tuple[str, str]]]]],
]


def _build_plan(keys: tuple[str, ...], layers: tuple[Module, ...]) -> RoutePlan:
    """The :data:`RoutePlan` of the names ``keys`` (``"<index>.<name>"``) for ``layers``."""
    pairs: list[list[tuple[str, str]]] = [[] for _ in layers]
    full: list[dict[str, str]] = [{} for _ in layers]
    order: list[tuple[int, str, str]] = []
    for key in keys:
        index, rest = _split_name(key)
        pairs[index].append((rest, key))
        full[index][rest] = key
        order.append((index, rest, key))
    direct: list[tuple[dict[str, Any], str, str]] = []
    others: list[tuple[Module, list[tuple[str, str]]]] = []
    for layer, layer_pairs in zip(layers, pairs, strict=True):
        if not layer_pairs:
            continue
        if type(layer)._rebind_parameters is _REBIND:
            attributes = layer.__dict__
            direct += [(attributes, name, key) for name, key in layer_pairs]
        else:
            others.append((layer, layer_pairs))
    return keys, layers, pairs, full, order, (direct, others)


@functools.lru_cache(maxsize=4096)
def _join_name(index: int, name: str) -> str:
    """``"<index>.<name>"`` (cached: built on every training step)."""
    return f"{index}.{name}"


@functools.lru_cache(maxsize=4096)
def _joined(index: int, names: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """``(name, "<index>.<name>")`` for each of a layer's ``names`` (cached: built on every training step)."""
    return tuple((name, _join_name(index, name)) for name in names)


@functools.lru_cache(maxsize=4096)
def _grad_names(names: tuple[str, ...]) -> tuple[str, ...]:
    """``"grad_<name>"`` for each of ``names``: the attributes holding their gradients (cached)."""
    return tuple("grad_" + name for name in names)


@functools.lru_cache(maxsize=4096)
def _split_name(key: str) -> tuple[int, str]:
    """``"<index>.<name>"`` -> ``(index, name)`` (cached: split on every training step)."""
    head, _, rest = key.partition(".")
    return int(head), rest
