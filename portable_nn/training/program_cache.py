"""Compiled training programs shared across :class:`~portable_nn.training.step.TrainStep` objects, by structure.

A compiled step is a function of (parameters, optimizer buffers, the step's numbers, batch): two
models of the same architecture, trained with the same loss and optimizer structure on batches of
the same signature, run the same program. This module keeps those programs process-wide in a
bounded least-recently-used table (:data:`MAX_SHARED_PROGRAMS`), keyed by what the program closes
over: see :func:`structure_key`. A second ``fit`` of a scikit-learn estimator on JAX, or a new
``train_step`` on a fresh model of the same architecture, compiles nothing.

:func:`compilation_cache` exposes the backend's persistent (on-disk) compilation cache.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from typing import Any

from ..backends.fast_paths import compilation_cache as _backend_cache
from ..losses import Loss
from ..nn.module import Module
from ..nn.sequential import Sequential
from ..optim import Optimizer

__all__ = ["MAX_SHARED_PROGRAMS", "clear_programs", "compilation_cache", "shared_program", "structure_key"]

#: compiled step programs kept process-wide (least recently used dropped beyond this, with its executables: a small
#: MLP's program holds a few MB)
MAX_SHARED_PROGRAMS = 16

_PLAIN = (type(None), bool, int, float, str)
_programs: OrderedDict[Hashable, Callable[..., Any]] = OrderedDict()
_lock = threading.Lock()


class _Key:
    """A hashable key whose hash is computed once (the step's hot path hashes it on every call)."""

    __slots__ = ("_hash", "value")

    def __init__(self, value: Hashable) -> None:
        self.value, self._hash = value, hash(value)

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        return self is other or (isinstance(other, _Key) and self._hash == other._hash and self.value == other.value)


def _model_key(model: Module) -> Hashable | None:
    """Class, registered name and ``get_config()`` of ``model``, recursively for a ``Sequential``; None: not shared.

    Only registered classes (:func:`portable_nn.register`) are keyed: registering a class declares
    that its ``get_config()`` rebuilds its architecture (what ``pnn.save``/``pnn.load`` rely on too).
    """
    from ..io.registry import registered_name

    name = registered_name(type(model))
    if name is None:
        return None
    children: tuple[Hashable, ...] = ()
    if isinstance(model, Sequential):
        keys = [_model_key(layer) for layer in model.layers]
        if any(key is None for key in keys):
            return None
        children = tuple(keys)
    try:
        config = json.dumps(model.get_config(), sort_keys=True)
    except Exception:  # no config, or not JSON values: not shared
        return None
    return (type(model), name, config, children)


def _loss_key(loss_fn: Any) -> Hashable | None:
    """Class and options of a portable_nn :class:`~portable_nn.losses.Loss`; None (not shared) for anything else.

    The key is the class and every attribute; a built-in loss's private attributes are caches of
    eager calls (never read by a trace) and are left out. Options must be plain values (None,
    bool, int, float, str, or tuples of them): a loss holding an array (class weights) is not
    shared, so no program ever closes over another loss's constants.
    A user callable is not shared either (its identity says nothing about what it computes).
    """
    if not isinstance(loss_fn, Loss):
        return None
    built_in = type(loss_fn).__module__.startswith("portable_nn.losses")
    items: list[tuple[str, Hashable]] = []
    for attribute, value in sorted(vars(loss_fn).items()):
        if built_in and attribute.startswith("_"):  # a cache (e.g. arange(C) of eager calls), never an option
            continue
        if isinstance(value, tuple) and all(type(v) in _PLAIN for v in value):
            items.append((attribute, tuple((type(v), v) for v in value)))
        elif type(value) in _PLAIN:
            items.append((attribute, (type(value), value)))
        else:
            return None
    return (type(loss_fn), tuple(items))


def structure_key(model: Module, loss_fn: Any, optimizer: Optimizer) -> Hashable | None:
    """What a compiled step closes over besides its arguments, or None where it cannot be shared.

    The model's structure (:func:`_model_key`: class, registered name and ``get_config()``, nested;
    parameter names, shapes and dtypes), the loss's class and options (:func:`_loss_key`) and the
    optimizer's class and which parameters each group holds. The optimizer's ``structure()``, the
    step's scalar names, donation, input signature and placement are added per program by the step.

    Parameters
    ----------
    model : Module
        The model trained.
    loss_fn : callable
        The step's loss.
    optimizer : Optimizer
        The optimizer of ``model``.

    Returns
    -------
    hashable or None
        Equal for two steps that may share a compiled program; None: the step keeps its own.

    Examples
    --------
    >>> import portable_nn as pnn
    >>> def key(seed):
    ...     model = pnn.Sequential(pnn.Linear(2, 3, seed=seed), pnn.Tanh(), pnn.Linear(3, 1, seed=seed))
    ...     return structure_key(model, pnn.MSELoss(), pnn.SGD(model, lr=0.1))
    >>> key(0) == key(1), key(0) is None
    (True, False)
    """
    model_key, loss_key = _model_key(model), _loss_key(loss_fn)
    if model_key is None or loss_key is None:
        return None
    try:
        params = tuple((name, tuple(p.shape), str(p.dtype)) for name, p in model.named_parameters().items())
        members = tuple(tuple(group["params"]) for group in optimizer.param_groups)
    except Exception:
        return None
    return _Key((model_key, params, loss_key, type(optimizer), members))


def shared_program(key: Hashable, build: Callable[[], Callable[..., Any]]) -> Callable[..., Any]:
    """The program cached under ``key``, or ``build()``'s, cached (least recently used dropped beyond the bound).

    Parameters
    ----------
    key : hashable
        The full key: :func:`structure_key` with the step's optimizer structure, scalar names,
        donation, input signature and placement.
    build : callable
        ``build() -> program``: compiles (lazily: ``jax.jit`` compiles on the first call).

    Returns
    -------
    callable
        The program.

    Examples
    --------
    >>> program = shared_program(("doc", 1), lambda: abs)
    >>> shared_program(("doc", 1), lambda: round) is abs
    True
    >>> clear_programs()
    """
    with _lock:
        program = _programs.get(key)
        if program is not None:
            _programs.move_to_end(key)
            return program
    program = build()  # outside the lock: jax.jit(...) builds nothing heavy, but a user build may
    with _lock:
        program = _programs.setdefault(key, program)
        _programs.move_to_end(key)
        while len(_programs) > MAX_SHARED_PROGRAMS:
            _programs.popitem(last=False)
    return program


def clear_programs() -> None:
    """Drop every shared compiled program (steps keep the ones they hold).

    Examples
    --------
    >>> clear_programs()
    """
    with _lock:
        _programs.clear()


@contextmanager
def compilation_cache(path: str) -> Iterator[None]:
    """Inside: compiled programs are read from, and written to, the directory ``path`` (a persistent cache).

    Delegates to each installed backend's hook (JAX: ``jax_compilation_cache_dir``, every program
    cached whatever its compile time; settings restored on exit). A later process with the same
    programs and backend version loads them instead of compiling. Where no installed backend
    compiles (NumPy, torch, ...), it does nothing and creates nothing.

    Parameters
    ----------
    path : str
        The cache directory (created by the backend's hook if missing).

    Yields
    ------
    None

    Examples
    --------
    >>> import tempfile, portable_nn as pnn
    >>> with tempfile.TemporaryDirectory() as folder, pnn.compilation_cache(folder):
    ...     pass
    """
    hooks = []
    for backend in ("jax",):
        try:
            hook = _backend_cache(backend)
        except ImportError:  # the backend is not installed
            hook = None
        if hook is not None:
            hooks.append(hook)
    if not hooks:
        yield
        return
    with hooks[0](path):
        yield
