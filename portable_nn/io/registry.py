"""Names of module and optimizer classes, for checkpoints that rebuild a whole model.

A checkpoint records a model as class *names* and JSON configs, never as code: loading looks
the names up here and refuses any other (no import of a module named by a file, no pickle).
The built-in layers (``Linear``, ``ReLU``, ``Tanh``, ``Sigmoid``, ``Sequential``) and
optimizers (``SGD``, ``Adam``, ``AdamW``, ``RMSprop``, ``Adagrad``) are registered under their class names.

Example::

    >>> import portable_nn as pnn
    >>> @pnn.register("my_scale")
    ... class Scale(pnn.Module):
    ...     pass
    >>> pnn.registered_name(Scale), pnn.registry.lookup("my_scale") is Scale
    ('my_scale', True)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, overload

from ..errors import ArgumentError, ArgumentTypeError, SerializationError

if TYPE_CHECKING:
    from ..nn.module import Module
    from ..optim import Optimizer

__all__ = [
    "lookup",
    "lookup_optimizer",
    "register",
    "register_optimizer",
    "registered_name",
    "registered_names",
    "registered_optimizer_name",
]

C = TypeVar("C", bound=type)

_MODULES: dict[str, type] = {}
_OPTIMIZERS: dict[str, type] = {}


def _add(table: dict[str, type], kind: str, cls: type, name: str | None) -> type:
    from ..nn.module import Module
    from ..optim import Optimizer

    base = Module if kind == "module" else Optimizer
    if not isinstance(cls, type) or not issubclass(cls, base):
        raise ArgumentTypeError(f"register a subclass of portable_nn.{base.__name__}, got {cls!r}")
    name = cls.__name__ if name is None else name
    if not isinstance(name, str) or not name or not name.isprintable():
        raise ArgumentError(f"a registered name must be a non-empty printable string, got {name!r}")
    current = table.get(name)
    redefined = current is not None and (current.__module__, current.__qualname__) == (cls.__module__, cls.__qualname__)
    if current is not None and current is not cls and not redefined:
        raise ArgumentError(
            f"the {kind} name {name!r} is already registered for {current.__module__}.{current.__qualname__}; "
            "pass another name: @register('my_name')"
        )
    # A second name is an alias: the first keeps loading (never unregister a class, built-ins included),
    # and the first stays the name save records (registered_name returns it).
    table[name] = cls
    return cls


@overload
def register(cls_or_name: C) -> C: ...
@overload
def register(cls_or_name: str | None = None) -> Callable[[C], C]: ...
def register(cls_or_name: Any = None) -> Any:
    """Record a :class:`~portable_nn.Module` subclass under a name, so ``pnn.load`` can rebuild it.

    Use bare (``@pnn.register``: the class name) or with a name (``@pnn.register("my_layer")``).
    The class must implement ``get_config()`` returning its constructor arguments (JSON values)
    unless its constructor takes only placement arguments; see :meth:`Module.get_config`.
    A name taken by another class is an ``ArgumentError``; redefining the same class (same module
    and qualified name, e.g. re-running a notebook cell) replaces it. Registering a class again
    under another name adds an alias: checkpoints naming either load, and ``save`` keeps recording
    the first name (``pnn.register("my.Dense")(pnn.Linear)`` leaves ``"Linear"`` working). Returns the class.

    Parameters
    ----------
    cls_or_name : type, str or None
        The class to register under its own name (bare decorator), or the name to register the decorated
        class under (a non-empty printable string; None: the class name).

    Returns
    -------
    type or callable
        The class itself, unchanged, when a class was given; otherwise a decorator that registers the class
        it receives and returns it unchanged.

    Raises
    ------
    ArgumentTypeError
        The class is not a subclass of :class:`~portable_nn.Module` (raised when the class is registered,
        i.e. by the decorator when a name was given).
    ArgumentError
        The name is empty or not printable, or is already registered for another class.

    Examples
    --------
    A layer saved and rebuilt under its registered name (here a subclass of ``Tanh``: a constructor that
    takes only placement arguments needs no ``get_config``):

    >>> import os, tempfile, portable_nn as pnn
    >>> @pnn.register("example.MyTanh")
    ... class MyTanh(pnn.Tanh):
    ...     pass
    >>> pnn.registered_name(MyTanh)
    'example.MyTanh'
    >>> path = os.path.join(tempfile.mkdtemp(), "model.safetensors")
    >>> pnn.save(MyTanh(), path)
    >>> pnn.load_metadata(path)["portable_nn.class"], type(pnn.load(path)) is MyTanh
    ('example.MyTanh', True)
    """
    if isinstance(cls_or_name, type):
        return _add(_MODULES, "module", cls_or_name, None)

    def decorate(cls: C) -> C:
        _add(_MODULES, "module", cls, cls_or_name)
        return cls

    return decorate


def register_optimizer(cls: C, name: str | None = None) -> C:
    """Record an :class:`~portable_nn.optim.Optimizer` subclass under ``name`` (default: its class name).

    ``pnn.save(model, path, optimizer=opt)`` records the name of ``opt``'s class, and
    :func:`~portable_nn.io.load_optimizer` rebuilds only registered classes. The rules for names
    (aliases, redefinitions) are :func:`register`'s.

    Parameters
    ----------
    cls : type
        A subclass of :class:`~portable_nn.optim.Optimizer`.
    name : str, optional
        A non-empty printable name (default: ``cls.__name__``).

    Returns
    -------
    type
        ``cls``, unchanged.

    Raises
    ------
    ArgumentTypeError
        ``cls`` is not a subclass of ``Optimizer``.
    ArgumentError
        ``name`` is empty or not printable, or is already registered for another class.

    Examples
    --------
    >>> import os, tempfile, portable_nn as pnn
    >>> class MySGD(pnn.SGD):
    ...     pass
    >>> pnn.register_optimizer(MySGD, "example.MySGD") is MySGD
    True
    >>> model = pnn.Linear(2, 1, seed=0)
    >>> path = os.path.join(tempfile.mkdtemp(), "run.safetensors")
    >>> pnn.save(model, path, optimizer=MySGD(model, lr=0.1))
    >>> type(pnn.load_optimizer(path, pnn.load(path))) is MySGD
    True
    """
    _add(_OPTIMIZERS, "optimizer", cls, name)
    return cls


def _find(table: dict[str, type], kind: str, name: Any) -> type:
    if not isinstance(name, str):
        raise SerializationError(f"a {kind} class name must be a string, got {name!r}")
    if name not in table:
        raise SerializationError(
            f"unknown {kind} class {name!r}: it is not registered (known: {sorted(table)}); "
            f"define it and decorate it with @pnn.register{'_optimizer' if kind == 'optimizer' else ''} "
            "before loading (portable_nn never imports code named by a file)"
        )
    return table[name]


def lookup(name: str) -> type[Module]:
    """The module class registered as ``name``; ``SerializationError`` naming it if there is none.

    Parameters
    ----------
    name : str
        A name given to :func:`register` (or a class name of a built-in layer).

    Returns
    -------
    type
        The registered subclass of :class:`~portable_nn.Module`.

    Raises
    ------
    SerializationError
        ``name`` is not a string or not registered (the message lists the registered names).

    Examples
    --------
    >>> import portable_nn as pnn
    >>> pnn.registry.lookup("Linear") is pnn.Linear
    True
    """
    return _find(_MODULES, "module", name)  # _add checked the base class


def lookup_optimizer(name: str) -> type[Optimizer]:
    """The optimizer class registered as ``name``; ``SerializationError`` naming it if there is none.

    Parameters
    ----------
    name : str
        A name given to :func:`register_optimizer` (or a class name of a built-in optimizer).

    Returns
    -------
    type
        The registered subclass of :class:`~portable_nn.optim.Optimizer`.

    Raises
    ------
    SerializationError
        ``name`` is not a string or not registered (the message lists the registered names).

    Examples
    --------
    >>> import portable_nn as pnn
    >>> pnn.registry.lookup_optimizer("Adam") is pnn.Adam
    True
    """
    return _find(_OPTIMIZERS, "optimizer", name)


def _name_of(table: dict[str, type], cls: type) -> str | None:
    return next((name for name, registered in table.items() if registered is cls), None)


def registered_name(cls: type) -> str | None:
    """The name ``cls`` was first registered under (the one ``save`` records), or None.

    Parameters
    ----------
    cls : type
        A module class.

    Returns
    -------
    str or None
        The first name ``cls`` was registered under with :func:`register`; None when it is not registered
        (``save`` then writes a model of that class as state only).

    Examples
    --------
    >>> import portable_nn as pnn
    >>> pnn.registered_name(pnn.Linear)
    'Linear'
    >>> class Unregistered(pnn.Linear):  # a subclass is not registered by its base
    ...     pass
    >>> pnn.registered_name(Unregistered) is None
    True
    """
    return _name_of(_MODULES, cls)


def registered_optimizer_name(cls: type) -> str | None:
    """The name the optimizer class ``cls`` is registered under, or None.

    Parameters
    ----------
    cls : type
        An optimizer class.

    Returns
    -------
    str or None
        The first name ``cls`` was registered under with :func:`register_optimizer`, or None.

    Examples
    --------
    >>> import portable_nn as pnn
    >>> pnn.registry.registered_optimizer_name(pnn.SGD)
    'SGD'
    """
    return _name_of(_OPTIMIZERS, cls)


def registered_names() -> list[str]:
    """The registered module names, sorted.

    Returns
    -------
    list of str
        Every name :func:`lookup` accepts, aliases included.

    Examples
    --------
    >>> import portable_nn as pnn
    >>> {"Linear", "Sequential"} <= set(pnn.registry.registered_names())
    True
    """
    return sorted(_MODULES)
