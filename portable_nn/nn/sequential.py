"""``Sequential``: layers applied in order, gradients chained back in reverse.

Parameters are the children's, named ``"<index>.<name>"`` (``"0.weight"``, ``"2.bias"``) as in
PyTorch, and every parameter-related method routes to the children, so the generic
:class:`~portable_nn.nn.module.Module` methods (``step``, optimizers, ...) work on a whole model.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from types import ModuleType
from typing import Any

from .._backend import backend_name, device_str, dtype_name
from ..errors import ArgumentError, ArgumentTypeError, DeviceError, DTypeError, NamespaceError
from ..typing import Array
from ._module_state import names_changed
from ._sequential_routing import SequentialRouting, _join_name
from .buffers import BufferUpdate, layer_call_for
from .module import CHECKED, Call, Module

__all__ = ["MAX_NESTING", "Sequential"]


#: Deepest nesting of Sequential models (a Sequential of a Sequential of ...): forward takes ~5 frames a level.
MAX_NESTING = 64


class Sequential(SequentialRouting):
    """``Sequential(*layers)``: ``forward(x)`` runs ``layers[0]``, then ``layers[1]``, ...

    Its pure pair chains the layers' pure pairs; ``forward``, ``backward`` and ``__call__`` derive
    from it as for every :class:`~portable_nn.Module` (the model keeps its layers' ``saved``, the
    layers keep nothing). ``backward(grad_output)`` returns ``dL/dx`` and accumulates into the
    layers' gradients. Layers with parameters must share one backend, device and dtype (they become the
    model's ``xp``, ``device`` and ``dtype``). A call that raises in any layer leaves every
    layer as it was before the call.

    Parameters
    ----------
    *layers : Module
        The layers, in order (at least one; sub-models nest at most ``MAX_NESTING`` deep).

    Raises
    ------
    ArgumentError
        No layer, or nesting deeper than ``MAX_NESTING``.
    ArgumentTypeError
        A layer is not a :class:`~portable_nn.Module`.
    NamespaceError, DeviceError, DTypeError
        Layers with parameters differ in backend, device or dtype.

    Examples
    --------
    >>> import portable_nn as pnn
    >>> model = pnn.Sequential(pnn.Linear(2, 3, seed=0), pnn.ReLU(), pnn.Linear(3, 1, seed=1))
    >>> x = model.xp.ones((4, 2), dtype=model.dtype)
    >>> y = model(x)
    >>> y.shape, model.backward(model.xp.ones_like(y)).shape, model.layers[0].grad_weight.shape
    ((4, 1), (4, 2), (3, 2))
    """

    def __init__(self, *layers: Module) -> None:
        if not layers:
            raise ArgumentError("Sequential needs at least one layer")
        for index, layer in enumerate(layers):
            if not isinstance(layer, Module):
                raise ArgumentTypeError(
                    f"layer {index}: expected a portable_nn Module, got {type(layer).__module__}."
                    f"{type(layer).__qualname__}"
                )
        # Nesting is bounded so that every method (they recurse through sub-models) stays far from Python's
        # recursion limit: a deeper model is a typed error here, not a RecursionError later.
        inner = (getattr(layer, "_nesting", 1) for layer in layers if isinstance(layer, Sequential))
        nesting = 1 + max(inner, default=0)
        if nesting > MAX_NESTING:
            raise ArgumentError(f"Sequential models nest at most {MAX_NESTING} deep, this one would nest {nesting}")
        self._nesting = nesting
        self.layers: tuple[Module, ...] = tuple(layers)
        self._check_placement()

    # ---------------------------------------------------------------- placement

    def _placed(self) -> list[tuple[int, Module]]:
        """The layers that own parameters (activations carry no backend)."""
        return [(i, layer) for i, layer in enumerate(self.layers) if layer.named_parameters()]

    def _check_placement(self) -> None:
        placed = self._placed()
        if not placed:
            return
        first_index, first = placed[0]
        for index, layer in placed[1:]:
            where = f"layer {index} vs layer {first_index}"
            if layer.xp is not first.xp:
                raise NamespaceError(
                    f"{where}: all layers must use one backend, got {backend_name(layer.xp)} "
                    f"and {backend_name(first.xp)}"
                )
            if layer.device != first.device:
                raise DeviceError(
                    f"{where}: all layers must be on one device, got {device_str(layer.xp, layer.device)!r} "
                    f"and {device_str(first.xp, first.device)!r}"
                )
            if layer.dtype != first.dtype:
                raise DTypeError(
                    f"{where}: all layers must share one dtype, got {dtype_name(layer.xp, layer.dtype)} "
                    f"and {dtype_name(first.xp, first.dtype)}"
                )

    def _first_placed(self) -> Module:
        placed = self._placed()
        if not placed:
            raise AttributeError("this Sequential has no layer with parameters, hence no backend/device/dtype")
        return placed[0][1]

    @property
    def xp(self) -> ModuleType:  # type: ignore[override]
        """The backend namespace of the layers with parameters."""
        return self._first_placed().xp

    @property
    def device(self) -> Any:
        return self._first_placed().device

    @property
    def dtype(self) -> Any:
        return self._first_placed().dtype

    # ---------------------------------------------------------------- container

    def _child_modules(self) -> list[tuple[str, Any]]:
        return [(str(index), layer) for index, layer in enumerate(self.layers)]

    def _uses_randomness(self) -> bool:
        uses = self.__dict__.get("_random_layers")  # the layers are fixed, and so is whether a class draws
        if uses is None:
            uses = self.__dict__["_random_layers"] = any(layer._uses_randomness() for layer in self.layers)
        return bool(uses)

    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self) -> Iterator[Module]:
        return iter(self.layers)

    def __getitem__(self, index: int) -> Module:
        return self.layers[index]

    # ---------------------------------------------------------------- all-or-nothing

    def _modules(self) -> list[Module]:
        """This model and every layer below it."""
        found: list[Module] = [self]
        for layer in self.layers:
            found += layer._modules() if isinstance(layer, Sequential) else [layer]
        return found

    def _transaction(self, call: Any, *args: Any) -> Any:
        """Run ``call(*args)``; if it raises, restore every layer's attributes.

        Layers update by rebinding attributes (never in place), so a shallow copy of each
        layer's ``__dict__`` is a complete snapshot.
        """
        snapshot = [(module, dict(vars(module))) for module in self._modules()]
        try:
            return call(*args)
        except BaseException:
            for module, attributes in snapshot:
                vars(module).clear()
                vars(module).update(attributes)
            names_changed()  # (restored attributes: flat parameter slots are built again)
            raise

    # ---------------------------------------------------------------- the pure pair (forward/backward derive from it)

    def functional_forward(self, params: Mapping[str, Array], x: Array, call: Call = CHECKED) -> tuple[Array, Any]:
        """``(y, saved)``: every layer's pure forward in order, ``params`` named ``"<index>.<name>"``; pure.

        Parameters
        ----------
        params : mapping of str to array
            The keys of :meth:`named_parameters` (``"0.weight"``, ...).
        x : array
            The first layer's input.
        call : Call
            Handed to every layer unchanged (see :class:`~portable_nn.nn.module.Call`).

        Returns
        -------
        y : array
            The last layer's output.
        saved : list
            Each layer's ``saved``, in order.

        Raises
        ------
        PortableNNError
            Whatever a layer raises (with ``call.validate``: a typed error naming the argument).

        Examples
        --------
        >>> import numpy as np, portable_nn as pnn
        >>> model = pnn.Sequential(pnn.Linear(2, 4, seed=0), pnn.Tanh(), pnn.Linear(4, 1, seed=1))
        >>> y, saved = model.functional_forward(model.named_parameters(), np.ones((3, 2), np.float32))
        >>> y.shape, len(saved)
        ((3, 1), 3)
        """
        plan = self._plan(params)
        routed = self._route(params, plan)
        kept: list[Any] = []  # a plain list: torch.compile traces it (fullgraph)
        updates: dict[str, Array] = {}
        keyed = call.key is not None
        index = 0
        for layer, layer_params in zip(self.layers, routed, strict=True):
            x, saved = layer.functional_forward(layer_params, x, layer_call_for(call, index, layer) if keyed else call)
            if type(saved) is BufferUpdate:  # split_saved inlined (no call per layer on every forward)
                for name in saved.buffers:
                    updates[_join_name(index, name)] = saved.buffers[name]
                saved = saved.saved
            kept += (saved,)  # an append without a method call
            index += 1  # noqa: SIM113 (no enumerate tuple per layer)
        return x, (BufferUpdate(kept, updates) if updates else kept)

    def functional_backward(
        self,
        params: Mapping[str, Array],
        saved: Any,
        grad_output: Array,
        need_input_grad: bool = True,
        call: Call = CHECKED,
    ) -> tuple[Array | None, dict[str, Array]]:
        """``(dL/dx or None, {"<index>.<name>": gradient})`` through the layers in reverse; pure.

        Every layer but the first is asked for its input gradient (the next layer down uses it);
        the first gets ``need_input_grad``.

        Parameters
        ----------
        params : mapping of str to array
            The parameters the forward ran with.
        saved : list
            The forward's ``saved``.
        grad_output : array
            ``dL/dy`` of the last layer's output.
        need_input_grad : bool
            Whether the caller uses ``dL/dx`` of the model's input.
        call : Call
            Handed to every layer unchanged.

        Returns
        -------
        grad_x : array or None
            ``dL/dx`` of the model's input (None when not needed and the first layer skips it).
        grads : dict of str to array
            In the order of :meth:`named_parameters`.

        Examples
        --------
        >>> import numpy as np, portable_nn as pnn
        >>> model = pnn.Sequential(pnn.Linear(2, 4, seed=0), pnn.Tanh(), pnn.Linear(4, 1, seed=1))
        >>> params = model.named_parameters()
        >>> y, saved = model.functional_forward(params, np.ones((3, 2), np.float32))
        >>> grad_x, grads = model.functional_backward(params, saved, np.ones((3, 1), np.float32), False)
        >>> grad_x, list(grads)
        (None, ['0.weight', '0.bias', '2.weight', '2.bias'])
        """
        plan = self._plan(params)
        routed = self._route(params, plan)
        layers = self.layers
        index = len(layers)
        by_layer: list[Any] = [None] * index
        while index:  # the layers in reverse, the first told need_input_grad
            index -= 1
            grad_output, by_layer[index] = layers[index].functional_backward(
                routed[index], saved[index], grad_output, need_input_grad or index > 0, call
            )
        grads: dict[str, Array] = {}
        for index, name, key in plan[4]:  # in the order of params; buffers have no gradient
            layer_grads = by_layer[index]
            if name in layer_grads:
                grads[key] = layer_grads[name]
        return grad_output, grads

    def to(self, xp: Any = None, device: Any = None, dtype: Any = None) -> Sequential:
        """Move every layer (see :meth:`Module.to`); all or nothing across layers.

        What the model's last forward kept is dropped, as for a layer.

        Parameters
        ----------
        xp : str, namespace or None
            The target backend (None: keep).
        device : str, device or None
            The target device (None: keep).
        dtype : str, dtype or None
            The target floating dtype (None: keep; given: an explicit cast).

        Returns
        -------
        Sequential
            ``self``, moved.

        Examples
        --------
        >>> import portable_nn as pnn
        >>> model = pnn.Sequential(pnn.Linear(2, 1, seed=0), pnn.Tanh()).to(dtype="float64")
        >>> model[0].weight.dtype.name
        'float64'
        """

        def apply() -> None:
            for layer in self.layers:
                layer.to(xp=xp, device=device, dtype=dtype)
            self._check_placement()

        self._transaction(apply)
        self._forget_kept()
        return self

    # ---------------------------------------------------------------- display

    def __repr__(self) -> str:
        lines = [f"  ({i}): " + repr(layer).replace("\n", "\n  ") for i, layer in enumerate(self.layers)]
        return "Sequential(\n" + "\n".join(lines) + "\n)"

    # ---------------------------------------------------------------- architecture config

    def get_config(self) -> dict[str, Any]:
        """The architecture as JSON values, nested for sub-models.

        Every layer's class must be registered (:func:`portable_nn.register`).

        Returns
        -------
        dict
            ``{"layers": [{"class": registered name, "config": layer.get_config()}, ...]}``.

        Raises
        ------
        ArgumentError
            A layer's class is not registered.

        Examples
        --------
        >>> import portable_nn as pnn
        >>> model = pnn.Sequential(pnn.Linear(2, 3, seed=0), pnn.ReLU(), pnn.Linear(3, 1, seed=1))
        >>> [layer["class"] for layer in model.get_config()["layers"]]
        ['Linear', 'ReLU', 'Linear']
        """
        from ..io.registry import registered_name

        layers = []
        for index, layer in enumerate(self.layers):
            name = registered_name(type(layer))
            if name is None:
                raise ArgumentError(
                    f"layer {index}: {type(layer).__qualname__} is not registered; decorate it with @pnn.register "
                    "so a checkpoint can name it (or save model.state_dict() to store the parameters only)"
                )
            layers.append({"class": name, "config": layer.get_config()})
        return {"layers": layers}

    @classmethod
    def from_config(
        cls, config: Mapping[str, Any], *, xp: Any = "numpy", device: Any = None, dtype: Any = "float32"
    ) -> Sequential:
        """The model of :meth:`get_config`'s dict: each layer built by its registered class's ``from_config``.

        Parameters
        ----------
        config : mapping
            ``{"layers": [{"class": name, "config": {...}}, ...]}``, as :meth:`get_config` gives.
        xp : str, namespace or array
            The backend of every layer.
        device : str, device or None
            The device; None: the backend's default.
        dtype : str or dtype
            The floating dtype.

        Returns
        -------
        Sequential
            A new model (parameters as each class's ``from_config`` makes them: zeros for ``Linear``).

        Raises
        ------
        ArgumentError
            A malformed config.
        SerializationError
            An unknown class name.

        Examples
        --------
        >>> import portable_nn as pnn
        >>> model = pnn.Sequential(pnn.Linear(2, 3, seed=0), pnn.ReLU(), pnn.Linear(3, 1, seed=1))
        >>> copy = pnn.Sequential.from_config(model.get_config())
        >>> len(copy), list(copy.named_parameters()) == list(model.named_parameters())
        (3, True)
        """
        from ..io.registry import lookup

        layers = config.get("layers") if isinstance(config, Mapping) and set(config) == {"layers"} else None
        if not isinstance(layers, list) or not layers:
            raise ArgumentError(f"a Sequential config is {{'layers': [non-empty list]}}, got {config!r:.200}")
        built = []
        for index, entry in enumerate(layers):
            if not isinstance(entry, Mapping) or set(entry) != {"class", "config"}:
                raise ArgumentError(f"layer {index}: expected {{'class': name, 'config': {{...}}}}, got {entry!r:.200}")
            built.append(lookup(entry["class"]).from_config(entry["config"], xp=xp, device=device, dtype=dtype))
        return cls(*built)
