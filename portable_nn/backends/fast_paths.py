"""Backend-specific fast paths, named by each backend's adapter and imported only when that backend is in use.

- ``torch_foreach``: multi-tensor (``torch._foreach_*``) optimizer updates;
- ``numpy_optim``: SGD's step of a whole group in one loop (the generic rule's NumPy operations, bit for bit);
- ``jax_step``: a ``jax.jit``-compiled training step for :func:`portable_nn.train_step`, and the
  abstract trace (``jax.eval_shape``) that validates each new input signature without device ops;
- ``jax_eval``: ``jax.jit`` of a pure evaluation function (the command line's loss and test logits);
- ``jax_cache``: JAX's persistent compilation cache around a block of work (``--compilation-cache``);
- ``numpy_scatter``, ``torch_scatter``, ``jax_scatter``: the row scatter-add of :func:`portable_nn.nn.scatter.index_add`
  (``np.add.at``, ``index_add_``, ``.at[].add``);
- ``torch_ops``: fused primitives (``linear`` as one ``addmm``, ``log_softmax``, ``index_cross_entropy``)
  for the eager path;
- ``numpy_ops``: the same primitives (and ``sum_rows``) as the generic code's NumPy operations without
  NumPy's Python wrappers around its reductions (bit for bit the generic path's numbers).

The library core asks :func:`optimizer_fast_path` / :func:`step_compiler` / :func:`step_checker` /
:func:`eval_compiler` by backend name and
never imports a backend itself; a backend without an entry runs the generic array-API code.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

__all__ = [
    "array_ops",
    "compilation_cache",
    "eval_compiler",
    "optimizer_fast_path",
    "step_checker",
    "step_compiler",
    "step_numbers_put",
    "step_signature",
]

# Hook kinds: each adapter's ``fast_paths`` table (:class:`~portable_nn.backends.base.BackendAdapter`) maps a kind
# to the module of this package that implements it for its backend.
#: ``OPTIMIZERS: dict[str, update function]``: optimizer updates of a whole group (torch: multi-tensor)
OPTIMIZERS = "optimizers"
#: ``compile_step(pure_step, donate) -> compiled``, ``put_numbers(numbers, like)`` (its numbers argument),
#: ``check_step(probe, *args)`` (an abstract trace: no device op) and ``signature(x, y)`` (the input signature of a
#: step, cheaper than the generic one)
STEP = "step"
#: ``compile_eval(pure_fn) -> compiled`` (no donation, no state)
EVAL = "eval"
#: ``compilation_cache(path)``, a context manager (a persistent compile cache)
CACHE = "cache"
#: fused primitives ``linear(x, weight, bias)``, ``log_softmax(z)``, ``index_cross_entropy(z, target, mean)`` and
#: ``sum_rows(g)`` (each may be None: the generic code), and ``CONCRETE`` (arrays always hold readable values)
OPS = "ops"
#: ``index_add(index, values, num_rows)`` (index (n,), values (n, m) -> (num_rows, m))
SCATTER = "scatter"
#: array type -> that backend's primitives module or None (asked on every layer call: one dict lookup)
_ops_by_type: dict[type, Any] = {}
#: array type -> that backend's scatter-add module or None (asked on every embedding backward: one dict lookup)
_scatter_by_type: dict[type, Any] = {}


def _load(name: str) -> ModuleType:
    """The fast-path module ``name`` of this package, imported on first use.

    An ``import`` statement per module rather than ``importlib.import_module``: ``torch.compile`` traces it
    without a graph break, and ``array_ops`` runs inside a user's compiled function, possibly before any eager
    call imported the module (a ``sys.modules`` lookup would then guard on the module's absence).
    """
    if name == "torch_ops":
        from . import torch_ops

        return torch_ops
    if name == "numpy_ops":
        from . import numpy_ops

        return numpy_ops
    if name == "numpy_optim":
        from . import numpy_optim

        return numpy_optim
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


def _module_of(kind: str, backend: str) -> str | None:
    """The module (in this package) of ``backend``'s ``kind`` hook, named by its adapter, or None."""
    from .registry import _by_name  # the one table of adapters (a registered adapter names no module here)

    adapter = _by_name.get(backend)
    return None if adapter is None else adapter.fast_paths.get(kind)


def _hook(kind: str, backend: str, attribute: str) -> Any:
    """``attribute`` of ``backend``'s ``kind`` module (imported on first use), or None."""
    module = _module_of(kind, backend)
    return None if module is None else getattr(_load(module), attribute)


def optimizer_fast_path(backend: str, optimizer: str) -> Any:
    """The multi-tensor update ``optimizer`` (``"sgd"``, ``"adam"``...) for ``backend``, or None."""
    updates = _hook(OPTIMIZERS, backend, "OPTIMIZERS")
    return None if updates is None else updates.get(optimizer)


def step_compiler(backend: str) -> Any:
    """``compile_step`` of ``backend``'s compiler, or None where the backend has none that pays."""
    return _hook(STEP, backend, "compile_step")


def step_checker(backend: str) -> Any:
    """``check_step`` of ``backend``'s compiler (an abstract trace of a function), or None where there is none."""
    return _hook(STEP, backend, "check_step")


def step_numbers_put(backend: str) -> Any:
    """``put_numbers(numbers, like)`` of ``backend``'s compiler (floats as one array like ``like``), or None."""
    return _hook(STEP, backend, "put_numbers")


def step_signature(backend: str) -> Any:
    """``signature(x, y)`` of ``backend``'s compiler (the input signature of a step of its arrays), or None."""
    return _hook(STEP, backend, "signature")


def eval_compiler(backend: str) -> Any:
    """``compile_eval`` of ``backend`` (compiles a pure function of arrays into one program), or None: run eagerly."""
    return _hook(EVAL, backend, "compile_eval")


def compilation_cache(backend: str) -> Any:
    """``backend``'s ``compilation_cache(path)`` context manager (compiled programs kept on disk), or None."""
    return _hook(CACHE, backend, "compilation_cache")


def array_ops(x: Any) -> Any:
    """The fused primitives (``linear``, ``log_softmax``...) for ``x``'s backend, or None: use the generic code."""
    kind = type(x)
    try:
        return _ops_by_type[kind]
    except KeyError:
        pass
    from .._backend import backend_name, namespace_of

    module = _module_of(OPS, backend_name(namespace_of(x)))
    ops = _ops_by_type[kind] = None if module is None else _load(module)
    return ops


def scatter_ops(x: Any) -> Any:
    """The scatter-add module (``index_add``) for ``x``'s backend, or None: use the generic one-hot product."""
    kind = type(x)
    try:
        return _scatter_by_type[kind]
    except KeyError:
        pass
    from .._backend import backend_name, namespace_of

    module = _module_of(SCATTER, backend_name(namespace_of(x)))
    ops = _scatter_by_type[kind] = None if module is None else _load(module)
    return ops
