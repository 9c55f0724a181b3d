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
from collections.abc import Mapping
from typing import Any

from .._pickling import get_state, set_state
from ..typing import Array
from ._compiled_step import _CompiledStep
from ._core import Buffers as Buffers  # re-exported: the types of portable_nn.optim.base
from ._core import Hyper as Hyper
from ._core import Step as Step
from ._core import flag, gradient_prologue
from .state import load_optimizer_state

__all__ = ["Optimizer", "bias_correction", "flag", "gradient_prologue"]


class Optimizer(_CompiledStep):
    """Base class: a module, param groups of validated hyperparameters, per-parameter buffers, a step count.

    Subclasses set ``_LEGACY`` (defaults of hyperparameters older checkpoints lack) and define
    ``_validate(hyper) -> hyper``, ``_buffer_names(hyper)``, ``_initial_buffer(xp, name, p, hyper)``
    (zeros by default) and ``_update_one(xp, p, g, buffers, step, lr, hyper, *, inplace) -> (new_p,
    new_buffers)``, which may update ``buffers``' arrays in place only when ``inplace`` is True (they
    are the optimizer's private arrays then) and never writes ``p`` or ``g``; ``_FAST_PATH`` names a
    multi-tensor update in ``portable_nn.backends.fast_paths``; ``_scalars(hyper, count)`` the numbers a compiled
    step takes, with ``_SCALARS_CONSTANT_FROM = (_scalars, n)`` when they no longer change from step ``n`` on.

    Parameters
    ----------
    module : Module
        The model whose parameters (``module.named_parameters()``) are optimized.
    param_groups : list of dict, optional
        Per-group overrides, see ``portable_nn.optim.groups``.
    foreach : bool or None, optional
        The backend's update of a whole group at once (torch: multi-tensor ``_foreach_*`` for every
        optimizer; NumPy: SGD's); None: where available, False: the generic per-parameter rule, True: an
        ``ArgumentError`` at the first step where there is none.
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
        self.check_gradients(params, grads)
        self.step_with(params, grads)

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

    def __getstate__(self) -> dict[str, Any]:  # pickle/deepcopy: buffers as host copies (portable_nn._pickling)
        # caches of the hot path (array type, namespace, last stored arrays): rebuilt after a round trip
        self._backend, self._stored_first, self._stored_state, self._structure = (None,), None, None, (None, None)
        self._numbers = None
        return get_state(self)

    def __setstate__(self, state: dict[str, Any]) -> None:
        set_state(self, state)

    def __repr__(self) -> str:
        groups = self._groups()
        args = ", ".join(f"{k}={v!r}" for k, v in groups[0].items())
        extra = f", param_groups={len(groups) - 1}" if len(groups) > 1 else ""
        return f"{type(self).__name__}({args}{extra})"


def bias_correction(xp: Any, beta: float, step: Step, like: Array) -> Any:
    """``1 - beta**step``: exact float64 for a Python int step, ``-expm1(step·log beta)`` (accurate near 0) traced."""
    if isinstance(step, int):
        return 1 - beta**step
    if beta == 0:
        return 1.0
    return -xp.expm1(xp.astype(step, like.dtype) * math.log(beta))
