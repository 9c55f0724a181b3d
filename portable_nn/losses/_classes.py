"""Class-axis plumbing shared by ``CrossEntropyLoss`` and ``NLLLoss``: layouts, target and weight checks.

Inputs are ``(C,)``, ``(N, C)`` or ``(N, C, d1, ..., dk)``; the math runs on a ``(rows, C)``
matrix (``rows = N * d1 * ... * dk``; 1 for unbatched), and gradients go back to the input's layout.
"""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any

from .._backend import device_of, dtype_name, has_values, is_traced, namespace_of, to_host
from .._checks import check_array, shape_str
from .._trusted import concrete_of, note_unchecked
from ..errors import ArgumentError, ArgumentTypeError, DTypeError, NamespaceError, ShapeError
from ..typing import Array
from ._base import element_count

__all__ = [
    "Layout",
    "check_index_target",
    "check_weight_option",
    "class_labels",
    "is_floating",
    "index_terms",
    "target_onehot",
    "target_range_ignored",
]


class Layout:
    """How an input of shape ``(C,)``, ``(N, C)`` or ``(N, C, d1, ..., dk)`` maps to ``(rows, C)`` and back."""

    def __init__(self, x: Array, what: str) -> None:
        shape = tuple(x.shape)
        if len(shape) == 0 or (len(shape) == 1 and shape[0] == 0) or (len(shape) >= 2 and shape[1] == 0):
            raise ShapeError(
                f"{what}: expected shape (C,), (N, C) or (N, C, d1, ..., dk) with C >= 1, got {shape_str(shape)}"
            )
        self.shape = shape
        self.classes = shape[0] if len(shape) == 1 else shape[1]
        #: The shape of the per-element loss (and of class-index targets): the input's without the class axis.
        self.loss_shape = shape[1:] if len(shape) == 1 else (shape[0], *shape[2:])
        #: Whether a size is ``None`` (a symbolic dimension): then ``rows`` is -1, for reshapes only.
        self.symbolic = not all(isinstance(d, int) for d in self.loss_shape)
        self.rows = -1 if self.symbolic else math.prod(self.loss_shape)
        #: ``loss_shape`` for a reshape: a symbolic size as -1.
        self.loss_dims = tuple(-1 if d is None else d for d in self.loss_shape)

    def count(self, xp: ModuleType, rows: Array) -> int | Array:
        """The number of rows: ``rows`` (an int), or counted in the graph on ``rows`` (rows, ...) when symbolic."""
        if not self.symbolic:
            return self.rows
        return element_count(xp, rows[:, 0] if rows.ndim == 2 else rows)

    def to_rows(self, xp: ModuleType, x: Array) -> Array:
        """``x`` (the input's shape) as ``(rows, C)``."""
        if len(self.shape) == 2:
            return x
        if len(self.shape) == 1:
            return xp.reshape(x, (1, self.classes))
        moved = xp.permute_dims(x, (0, *range(2, len(self.shape)), 1))  # class axis last
        return xp.reshape(moved, (self.rows, self.classes))

    def from_rows(self, xp: ModuleType, rows: Array) -> Array:
        """Inverse of :meth:`to_rows`."""
        if len(self.shape) == 2:
            return rows
        if len(self.shape) == 1:
            return xp.reshape(rows, (self.classes,))
        moved = xp.reshape(rows, (*self.loss_dims, self.classes))
        last = len(self.shape) - 1
        return xp.permute_dims(moved, (0, last, *range(1, last)))


def check_weight_option(weight: Any) -> Any:
    """``weight`` as given (None, or any array: its placement is checked at call time); lists are refused."""
    if weight is None:
        return None
    if not hasattr(weight, "shape") or not hasattr(weight, "dtype"):
        raise ArgumentTypeError(f"weight must be an array or None, got {type(weight).__name__}")
    return weight


def check_class_weight(xp: ModuleType, weight: Array, x: Array, classes: int) -> None:
    """Raise unless ``weight`` is a ``(C,)`` array of ``x``'s namespace, device and dtype."""
    try:
        check_array(weight, "weight", xp, device_of(x), x.dtype)
    except NamespaceError as exc:
        raise NamespaceError(f"{exc} (weight must live where the input does)") from None
    if tuple(weight.shape) != (classes,):
        raise ShapeError(f"weight: expected shape ({classes},) (one per class), got {shape_str(weight.shape)}")


def check_index_target(xp: ModuleType, target: Array, layout: Layout, ignore_index: int) -> None:
    """Raise unless class-index ``target`` has an integer dtype and the shape ``layout.loss_shape``."""
    if not xp.isdtype(target.dtype, "integral"):
        raise DTypeError(
            f"target: expected integer class indices or floating class probabilities, "
            f"got dtype {dtype_name(xp, target.dtype)}"
        )
    if tuple(target.shape) != layout.loss_shape:
        raise ShapeError(
            f"target: expected shape {shape_str(layout.loss_shape)} (one class index per position), "
            f"got {shape_str(target.shape)}"
        )


_FLOATING: dict[tuple[int, Any], bool] = {}


def is_floating(xp: ModuleType, dtype: Any) -> bool:
    """``xp.isdtype(dtype, "real floating")``, remembered per namespace and dtype (asked on every loss call)."""
    key = (id(xp), dtype)
    known = _FLOATING.get(key)
    if known is None:
        known = _FLOATING[key] = bool(xp.isdtype(dtype, "real floating"))
    return known


def target_onehot(xp: ModuleType, target: Array, layout: Layout, labels: Array) -> Array:
    """``(rows, C)`` booleans: row ``i`` marks class ``target[i]`` (no mark where it is not a class index).

    ``labels``: ``arange(C)`` of the target's dtype as a ``(1, C)`` row (see :func:`class_labels`).
    """
    return xp.reshape(target, (layout.rows, 1)) == labels


def class_labels(xp: ModuleType, target: Array, classes: int) -> Array:
    """``arange(C)`` as a ``(1, C)`` row of ``target``'s dtype and device."""
    return xp.reshape(xp.arange(classes, dtype=target.dtype, device=device_of(target)), (1, classes))


def target_range_ignored(
    xp: ModuleType, target: Array, layout: Layout, ignore_index: int, onehot: Array, validate: bool = True
) -> bool:
    """Check the values of class-index ``target``; return whether some entry equals ``ignore_index``.

    Values must be in ``[0, C)`` or equal ``ignore_index`` (an ``ArgumentError`` naming the range
    found otherwise). The common case costs one read-back of one boolean: every row of ``onehot``
    marks a class (and ``ignore_index`` is not a class), so every target is a class index and
    none is ignored. Otherwise the min and max come back in one transfer, and only when
    ``ignore_index`` lies between them a second transfer checks the other values. Under a
    compiler (values unknown: ``train_step``'s compiled step, or a user's own ``jax.jit``/``jax.vmap``
    of the loss) nothing is read and ignored entries are masked unconditionally; in the abstract
    validation of a compiled ``train_step`` (:class:`portable_nn._trusted.checked_trace`, ``validate``
    True) the values are checked on a host copy of the concrete target (no device op), or the check is
    recorded as not run. Where the target has no values to read (symbolic sizes or arrays, lazy namespaces
    without values, inside ``torch.compile`` or a ``torch.func`` transform: :func:`portable_nn._backend.has_values`)
    the check is skipped too: an out-of-range index then marks no class (its row's one-hot is zero), as under
    ``jax.jit``.
    """
    if layout.symbolic or not has_values(target):  # no values to read (ndonnx, torch.compile, torch.func)
        return True  # ignored entries are masked unconditionally; out-of-range indices are not reported
    if is_traced(target) or is_traced(onehot):  # onehot: a concrete target inside a trace
        if validate:  # a checked abstract trace: the concrete target's host copy, if it has one
            _check_concrete_range(target, layout, ignore_index)
        return True
    return _range_ignored(xp, target, layout, ignore_index, onehot)


def _check_concrete_range(target: Array, layout: Layout, ignore_index: int) -> None:
    """The range check of :func:`target_range_ignored` on a host copy of the array traced ``target`` stands for."""
    concrete = concrete_of(target)
    if concrete is None:
        note_unchecked("the range of class-index targets")
        return
    host = to_host(concrete)
    hxp = namespace_of(host)
    _range_ignored(
        hxp, host, layout, ignore_index, target_onehot(hxp, host, layout, class_labels(hxp, host, layout.classes))
    )


def _range_ignored(xp: ModuleType, target: Array, layout: Layout, ignore_index: int, onehot: Array) -> bool:
    classes = layout.classes
    if layout.rows == 0:
        return False
    if not 0 <= ignore_index < classes and bool(xp.all(xp.any(onehot, axis=1))):  # every row marks a class
        return False
    low, high = (int(v) for v in to_host(xp.stack([xp.min(target), xp.max(target)])))  # one read-back
    if not low <= ignore_index <= high:
        if low < 0 or high >= classes:
            raise ArgumentError(f"target: class indices must be in [0, {classes}), got values in [{low}, {high}]")
        return False
    kept = target != ignore_index
    zero = xp.zeros_like(target)
    low, high, count = (
        int(v)
        for v in to_host(
            xp.stack(
                [
                    xp.min(xp.where(kept, target, zero)),
                    xp.max(xp.where(kept, target, zero)),
                    xp.sum(xp.astype(kept, target.dtype)),
                ]
            )
        )
    )
    if count and (low < 0 or high >= classes):
        raise ArgumentError(
            f"target: class indices must be in [0, {classes}) or equal ignore_index={ignore_index}, "
            f"got other values in [{low}, {high}]"
        )
    return bool(count < layout.rows)


def index_terms(
    xp: ModuleType,
    target: Array,
    layout: Layout,
    dtype: Any,
    weight: Array | None,
    ignore_index: int,
    ignored: bool,
    onehot: Array,
) -> tuple[Array, Array, Array | None]:
    """``(onehot, onehot_float, row_weight)`` for class-index targets on ``(rows, C)``.

    ``onehot`` (from :func:`target_onehot`) comes back without a mark on ignored rows;
    ``row_weight`` (rows,) is the target class's weight, 0 on ignored rows, or None when every
    row weighs 1.
    """
    rows, classes = layout.rows, layout.classes
    kept = None
    if ignored:
        kept = xp.reshape(target, (rows, 1)) != ignore_index
        if 0 <= ignore_index < classes:
            onehot = onehot & kept
    onehot_float = xp.astype(onehot, dtype)
    if weight is not None:
        row_weight = xp.sum(onehot_float * xp.reshape(weight, (1, classes)), axis=1)
    elif kept is not None:
        row_weight = xp.astype(xp.reshape(kept, (rows,)), dtype)
    else:
        row_weight = None
    return onehot, onehot_float, row_weight
