"""What compiled steps ask of :class:`~portable_nn.optim.Optimizer`: checked steps, buffers, commits, fast paths."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._arrays import as_array
from .._backend import backend_name, convert, device_of, is_lazy, materialize, namespace_of
from .._checks import check_like, shape_str
from ..errors import (
    ArgumentError,
    CallOrderError,
    DTypeError,
    ShapeError,
)
from ..nn.grad_mode import CHECKED, Call
from ..typing import Array
from ._core import Buffers
from ._pure_form import _PureForm


class _CompiledStep(_PureForm):
    """The step of :class:`~portable_nn.optim.Optimizer` on given arrays, and what ``train_step`` uses."""

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

    def step_with(
        self, params: dict[str, Array], grads: Mapping[str, Array], *keep: Array, call: Call = CHECKED
    ) -> tuple[Array, ...]:
        """:meth:`step` with the module's parameters and their gradients given (checked by the caller).

        Stores the new parameters and buffers, counts the step; on a lazy backend (Dask) the
        arrays ``keep`` (e.g. the loss) are materialized with them, and returned. With
        :data:`~portable_nn.nn.grad_mode.UNCHECKED` (:func:`portable_nn.train_step`, once it validated
        the input signature) the new parameters are rebound without ``set_parameters``' checks and
        the buffers this optimizer alone holds (:attr:`owns_buffers`) are updated in place: no copy
        per step, and nobody else can see the change.

        Parameters
        ----------
        params : dict of str to array
            ``module.named_parameters()``.
        grads : mapping of str to array
            A gradient per parameter.
        *keep : array
            Arrays to store along with the parameters.
        call : Call, optional
            :data:`~portable_nn.nn.grad_mode.CHECKED` (the default): the new parameters are checked by
            ``module.set_parameters`` (nothing changes if that raises);
            :data:`~portable_nn.nn.grad_mode.UNCHECKED`: for a caller that validated ``params`` and
            ``grads`` against the module (``train_step``).

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
        validate = call.validate
        inplace = self._private and not validate  # nothing can raise after a buffer is written
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
        if validate:
            self.module.set_parameters(new_params)  # raises before rebinding
        else:
            self.module._rebind_parameters(new_params)
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

    def commit(
        self, new_params: Mapping[str, Array], new_buffers: Buffers, *, owned: bool, call: Call = CHECKED
    ) -> None:
        """Store one step computed elsewhere (e.g. by :meth:`apply` in a compiled program).

        Counts the step, keeps ``new_buffers`` and rebinds the module's parameters (validated by
        ``module.set_parameters`` unless ``call`` is :data:`~portable_nn.nn.grad_mode.UNCHECKED`;
        nothing changes if that raises).

        Parameters
        ----------
        new_params : mapping of str to array
            Every parameter of the module, by name, of its current shape, dtype and placement.
        new_buffers : dict of str to dict of str to array
            ``{param: {buffer: array}}``, the buffers after this step.
        owned : bool
            Whether no one else holds ``new_buffers`` (they may then be updated in place or donated).
        call : Call, optional
            :data:`~portable_nn.nn.grad_mode.CHECKED` (the default) or, for a caller that computed
            ``new_params`` from the module's validated parameters (``train_step``),
            :data:`~portable_nn.nn.grad_mode.UNCHECKED`.

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
        if call.validate:
            self.module.set_parameters(new_params)
        else:
            self.module._rebind_parameters(new_params)
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
            raise ArgumentError(
                f"foreach=True: {type(self).__name__} has no multi-tensor (whole-group) path on {backend_name(xp)}"
            )
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
