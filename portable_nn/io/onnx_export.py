"""Export a model's forward to ONNX by tracing it on ndonnx's symbolic arrays: the array API is the exporter.

:func:`export_onnx` copies the model onto ndonnx (the parameters become graph constants), calls its
eval-mode forward on a symbolic input (``None`` sizes are symbolic dimensions), and writes the graph
that ndonnx recorded, checked by ``onnx.checker``. No layer knows about ONNX: every built-in layer's
forward is standard array API code, and so is a user's layer written against the standard.
Needs the optional extra ``onnx`` (``pip install "portable-nn[onnx]"``: ndonnx, onnx, onnxruntime).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Sequence
from typing import Any

from .._backend import convert, namespace_of, resolve_device, resolve_dtype, resolve_namespace
from ..backends.ndonnx_backend import NdonnxAdapter
from ..backends.registry import get_adapter
from ..errors import ArgumentError, ArgumentTypeError, BackendUnavailableError
from ..nn.embedding import Embedding
from ..nn.grad_mode import no_grad
from ..nn.module import Module

__all__ = ["export_onnx"]

#: The floating dtypes an exported graph may compute in.
EXPORT_DTYPES = ("float32", "float64")
#: The integer dtype of an index input (a model starting with an Embedding): ndonnx's ``take`` takes int64 only.
INDEX_DTYPES = ("int64",)
INPUT_NAME, OUTPUT_NAME = "input", "output"


def _checked_shape(input_shape: Any) -> tuple[int | str, ...]:
    """``input_shape`` with each ``None`` named as a symbolic dimension (``"batch"`` first, then ``"dim<i>"``)."""
    if isinstance(input_shape, (str, bytes)) or not isinstance(input_shape, Sequence):
        raise ArgumentTypeError(f"input_shape must be a tuple of ints and None, got {type(input_shape).__name__}")
    if len(input_shape) == 0:
        raise ArgumentError("input_shape must have at least one axis (the features), got ()")
    shape: list[int | str] = []
    for i, size in enumerate(input_shape):
        if size is None:
            shape.append("batch" if i == 0 else f"dim{i}")
        elif isinstance(size, bool) or not isinstance(size, int):
            raise ArgumentTypeError(f"input_shape[{i}] must be an int or None, got {type(size).__name__}")
        elif size < 0:
            raise ArgumentError(f"input_shape[{i}] must be >= 0 or None, got {size}")
        else:
            shape.append(size)
    return tuple(shape)


def _first_layer(model: Module) -> Module:
    """The module that receives the model's input: the first layer of (nested) containers."""
    while True:
        children = model._child_modules()
        if not children:
            return model
        model = children[0][1]


def _input_dtype(model: Module, dtype: str, input_dtype: str | None) -> str:
    """The graph input's dtype: ``input_dtype`` when given, else int64 for a model starting with an Embedding (its
    input is indices), else ``dtype``."""
    if input_dtype is None:
        return "int64" if isinstance(_first_layer(model), Embedding) else dtype
    if input_dtype not in EXPORT_DTYPES + INDEX_DTYPES:
        raise ArgumentError(f"input_dtype must be one of {list(EXPORT_DTYPES + INDEX_DTYPES)}, got {input_dtype!r}")
    return input_dtype


def _onnx() -> Any:
    try:
        return importlib.import_module("onnx")
    except ImportError as exc:
        raise BackendUnavailableError(
            f'export_onnx needs onnx and ndonnx: pip install "portable-nn[onnx]" ({exc})'
        ) from exc


def export_onnx(
    model: Module,
    path: str | os.PathLike[str],
    *,
    input_shape: Sequence[int | None],
    dtype: str = "float32",
    input_dtype: str | None = None,
) -> Any:
    """Write ``model``'s eval-mode forward as a checked ONNX model at ``path``; returns the ``onnx.ModelProto``.

    The model is copied onto ndonnx (``model`` itself is left as it is), its forward runs on a
    symbolic input of ``input_shape`` (``None``: a symbolic dimension, e.g. the batch) and
    ``input_dtype``, and the recorded graph is checked with ``onnx.checker.check_model(full_check=True)``
    and saved. The graph's input is named ``"input"`` and its output ``"output"``. Value-dependent
    checks of portable_nn are skipped on symbolic arrays (they have no values); shape, dtype and
    feature checks still run while tracing. The graph is the eval-mode forward: Dropout is the
    identity and BatchNorm1d normalizes with its running statistics (the model's own mode is
    left as it is).

    Parameters
    ----------
    model : Module
        Any portable_nn module with a forward (Linear, Sequential, activations, user layers written
        against the array API), on any backend; it must be registered to rebuild from its config
        (built-in classes are, see :func:`portable_nn.register`).
    path : str or os.PathLike
        Where to write the ``.onnx`` file.
    input_shape : tuple of int or None
        The input's shape, e.g. ``(None, 4)`` for a batch of any size of 4 features.
    dtype : {"float32", "float64"}, default "float32"
        The dtype of the parameters and the computation in the graph (and of the input, unless
        ``input_dtype`` says otherwise).
    input_dtype : {"float32", "float64", "int64"} or None, default None
        The dtype of the graph's input. None: ``"int64"`` when the model's first layer is an
        :class:`~portable_nn.Embedding` (its input is indices), ``dtype`` otherwise.

    Returns
    -------
    onnx.ModelProto
        The model written to ``path``.

    Raises
    ------
    BackendUnavailableError
        ndonnx or onnx is not installed.
    ArgumentTypeError, ArgumentError
        A bad ``model``, ``input_shape``, ``dtype`` or ``input_dtype``.
    ShapeError
        ``input_shape`` does not fit the model (e.g. the wrong number of features).
    DTypeError
        ``input_dtype`` does not fit the model (a floating input to an Embedding, indices to a Linear).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import numpy as np, onnxruntime
    >>> import portable_nn as pnn
    >>> model = pnn.Sequential(pnn.Linear(4, 8, seed=0), pnn.ReLU(), pnn.Linear(8, 2, seed=1))
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "model.onnx"
    >>> _ = pnn.export_onnx(model, path, input_shape=(None, 4))
    >>> x = np.ones((3, 4), dtype="float32")
    >>> (y,) = onnxruntime.InferenceSession(path).run(None, {"input": x})
    >>> bool(np.allclose(y, model(x), atol=1e-6))
    True

    A model starting with an :class:`~portable_nn.Embedding` takes int64 indices:

    >>> tagger = pnn.Sequential(pnn.Embedding(10, 4, seed=0), pnn.Linear(4, 2, seed=1))
    >>> _ = pnn.export_onnx(tagger, path, input_shape=(None, 5))
    >>> tokens = np.array([[1, 2, 3, 3, 9]])
    >>> (y,) = onnxruntime.InferenceSession(path).run(None, {"input": tokens})
    >>> y.shape, bool(np.allclose(y, tagger(tokens), atol=1e-6))
    ((1, 5, 2), True)
    """
    if not isinstance(model, Module):
        raise ArgumentTypeError(f"export_onnx exports a portable_nn Module, got {type(model).__name__}")
    if not isinstance(path, (str, os.PathLike)):
        raise ArgumentTypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    if dtype not in EXPORT_DTYPES:
        raise ArgumentError(f"dtype must be one of {list(EXPORT_DTYPES)}, got {dtype!r}")
    shape = _checked_shape(input_shape)
    input_kind = _input_dtype(model, dtype, input_dtype)
    onnx = _onnx()
    adapter = get_adapter("ndonnx")
    if not isinstance(adapter, NdonnxAdapter):
        raise BackendUnavailableError(f"export_onnx traces with portable_nn's ndonnx adapter, not {adapter!r}")
    try:
        xp = resolve_namespace("ndonnx")
    except BackendUnavailableError as exc:
        raise BackendUnavailableError(f'{exc}; pip install "portable-nn[onnx]"') from exc
    traced = type(model).from_config(model.get_config(), xp="ndonnx", dtype=dtype)
    device = resolve_device(xp)
    floating = {  # integer buffers (num_batches_tracked) play no part in the eval-mode graph
        name: convert(value, xp, device, dtype)
        for name, value in model.state_dict().items()
        if namespace_of(value).isdtype(value.dtype, "real floating")
    }
    traced.load_state_dict(floating, strict=False)
    evaluate = getattr(traced, "eval", None)
    if callable(evaluate):  # layers with a training mode (dropout, batch statistics) export their eval behaviour
        evaluate()
    floating_input = input_kind in EXPORT_DTYPES  # indices: the standard's integer dtype of that name
    x = adapter.symbolic_input(shape, resolve_dtype(xp, input_kind) if floating_input else getattr(xp, input_kind))
    with no_grad():
        y = traced(x)
    proto = adapter.onnx_model({INPUT_NAME: x}, {OUTPUT_NAME: y})
    onnx.checker.check_model(proto, full_check=True)
    onnx.save(proto, os.fspath(path))
    return proto
