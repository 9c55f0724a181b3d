"""Backend-specific fast paths, registered by backend name and imported only when that backend is in use.

- ``torch_foreach``: multi-tensor (``torch._foreach_*``) optimizer updates;
- ``jax_step``: a ``jax.jit``-compiled training step for :func:`portable_nn.train_step`, and the
  abstract trace (``jax.eval_shape``) that validates each new input signature without device ops;
- ``jax_eval``: ``jax.jit`` of a pure evaluation function (the command line's loss and test logits);
- ``jax_cache``: JAX's persistent compilation cache around a block of work (``--compilation-cache``);
- ``numpy_scatter``, ``torch_scatter``, ``jax_scatter``: the row scatter-add of :func:`portable_nn.nn.scatter.index_add`
  (``np.add.at``, ``index_add_``, ``.at[].add``);
- ``torch_ops``: fused primitives (``linear`` as one ``addmm``, ``log_softmax``, ``index_cross_entropy``)
  for the eager path.

The library core asks :func:`optimizer_fast_path` / :func:`step_compiler` / :func:`step_checker` /
:func:`eval_compiler` by backend name and
never imports a backend itself; a backend without an entry runs the generic array-API code.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

__all__ = ["array_ops", "compilation_cache", "eval_compiler", "optimizer_fast_path", "step_checker", "step_compiler"]

#: backend name -> module (in this package) defining ``OPTIMIZERS: dict[str, update function]``
_OPTIMIZER_MODULES: dict[str, str] = {"torch": "torch_foreach"}
#: backend name -> module defining ``compile_step(pure_step, donate) -> compiled`` and
#: ``check_step(probe, *args)`` (trace ``probe`` abstractly: shapes and dtypes only, no device op)
_COMPILER_MODULES: dict[str, str] = {"jax": "jax_step"}
#: backend name -> module defining ``compile_eval(pure_fn) -> compiled`` (no donation, no state)
_EVAL_COMPILER_MODULES: dict[str, str] = {"jax": "jax_eval"}
#: backend name -> module defining ``compilation_cache(path)``, a context manager (a persistent compile cache)
_CACHE_MODULES: dict[str, str] = {"jax": "jax_cache"}
#: backend name -> module defining fused primitives ``linear(x, weight, bias)``, ``log_softmax(z)`` and, optionally,
#: ``index_cross_entropy(z, target, mean)``
_OPS_MODULES: dict[str, str] = {"torch": "torch_ops"}
#: backend name -> module defining ``index_add(index, values, num_rows)`` (index (n,), values (n, m) -> (num_rows, m))
_SCATTER_MODULES: dict[str, str] = {"numpy": "numpy_scatter", "torch": "torch_scatter", "jax": "jax_scatter"}
#: array type -> that backend's primitives module or None (asked on every layer call: one dict lookup)
_ops_by_type: dict[type, Any] = {}


def _load(name: str) -> ModuleType:
    """The fast-path module ``name`` of this package, imported on first use.

    An ``import`` statement per module rather than ``importlib.import_module``: ``torch.compile`` traces it
    without a graph break, and ``array_ops`` runs inside a user's compiled function, possibly before any eager
    call imported the module (a ``sys.modules`` lookup would then guard on the module's absence).
    """
    if name == "torch_ops":
        from . import torch_ops

        return torch_ops
    if name == "torch_scatter":
        from . import torch_scatter

        return torch_scatter
    if name == "numpy_scatter":
        from . import numpy_scatter

        return numpy_scatter
    if name == "jax_scatter":
        from . import jax_scatter

        return jax_scatter
    if name == "torch_foreach":
        from . import torch_foreach

        return torch_foreach
    if name == "jax_step":
        from . import jax_step

        return jax_step
    if name == "jax_eval":
        from . import jax_eval

        return jax_eval
    if name == "jax_cache":
        from . import jax_cache

        return jax_cache
    raise LookupError(f"no fast-path module {name!r} in {__name__}")


def _hook(table: dict[str, str], backend: str, attribute: str) -> Any:
    """``attribute`` of the module ``table`` names for ``backend`` (imported on first use), or None."""
    module = table.get(backend)
    return None if module is None else getattr(_load(module), attribute)


def optimizer_fast_path(backend: str, optimizer: str) -> Any:
    """The multi-tensor update ``optimizer`` (``"sgd"``, ``"adam"``...) for ``backend``, or None."""
    updates = _hook(_OPTIMIZER_MODULES, backend, "OPTIMIZERS")
    return None if updates is None else updates.get(optimizer)


def step_compiler(backend: str) -> Any:
    """``compile_step`` of ``backend``'s compiler, or None where the backend has none that pays."""
    return _hook(_COMPILER_MODULES, backend, "compile_step")


def step_checker(backend: str) -> Any:
    """``check_step`` of ``backend``'s compiler (an abstract trace of a function), or None where there is none."""
    return _hook(_COMPILER_MODULES, backend, "check_step")


def eval_compiler(backend: str) -> Any:
    """``compile_eval`` of ``backend`` (compiles a pure function of arrays into one program), or None: run eagerly."""
    return _hook(_EVAL_COMPILER_MODULES, backend, "compile_eval")


def compilation_cache(backend: str) -> Any:
    """``backend``'s ``compilation_cache(path)`` context manager (compiled programs kept on disk), or None."""
    return _hook(_CACHE_MODULES, backend, "compilation_cache")


def array_ops(x: Any) -> Any:
    """The fused primitives (``linear``, ``log_softmax``...) for ``x``'s backend, or None: use the generic code."""
    kind = type(x)
    try:
        return _ops_by_type[kind]
    except KeyError:
        pass
    from .._backend import backend_name, namespace_of

    module = _OPS_MODULES.get(backend_name(namespace_of(x)))
    ops = _ops_by_type[kind] = None if module is None else _load(module)
    return ops


def scatter_ops(x: Any) -> Any:
    """The scatter-add module (``index_add``) for ``x``'s backend, or None: use the generic one-hot product."""
    from .._backend import backend_name, namespace_of

    module = _SCATTER_MODULES.get(backend_name(namespace_of(x)))
    return None if module is None else _load(module)
