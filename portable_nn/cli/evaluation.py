"""The command line's evaluation: the loss on the training set and the logits of the test set.

On a backend with an evaluation compiler (JAX, see :func:`portable_nn.backends.fast_paths.eval_compiler`)
both come from one compiled program of the model's parameters and the data, compiled once per
argument signature; elsewhere (NumPy, torch, array-api-strict, Dask) they are computed eagerly. Both
run the model in eval mode (``functional_call(..., training=False)``) whatever its mode: an
evaluation draws no dropout mask and updates no running statistics.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from .._backend import backend_name, from_host, to_host
from .._trusted import checked_trace
from ..backends.fast_paths import eval_compiler
from ..nn.module import Module
from ..training.functional_model import functional_call
from ..typing import Array
from .data import Data, device_labels

__all__ = ["Evaluator", "evaluate"]

LossFn = Callable[[Array, Array], tuple[Array, Array]]


class Evaluator:
    """``evaluator(x_train, y_train, x_test) -> (loss, test_logits)`` of ``model`` with its current parameters.

    Parameters
    ----------
    model : Module
        The trained model; its parameters are read on every call (never changed).
    loss_fn : callable
        ``loss_fn(prediction, target) -> (loss, grad)``, e.g. :class:`~portable_nn.CrossEntropyLoss`.
    compile : bool
        Compile where the backend has an evaluation compiler (default); False: always eager.

    Notes
    -----
    The compiled program checks namespaces, dtypes and shapes while it is traced (the eager typed
    errors), but cannot read values: class targets out of range are not reported there (they count
    no loss). The command line's labels are ``0..C-1`` by construction.

    Examples
    --------
    >>> import numpy as np, portable_nn as pnn
    >>> model = pnn.Sequential(pnn.Linear(2, 4, seed=0), pnn.Tanh(), pnn.Linear(4, 3, seed=1))
    >>> evaluator = Evaluator(model, pnn.CrossEntropyLoss())
    >>> x = np.ones((5, 2), np.float32)
    >>> loss, logits = evaluator(x, np.array([0, 1, 2, 1, 0]), x[:2])
    >>> evaluator.compiled, logits.shape
    (False, (2, 3))
    """

    def __init__(self, model: Module, loss_fn: LossFn, *, compile: bool = True) -> None:
        self.model, self.loss_fn = model, loss_fn
        compiler = eval_compiler(backend_name(model.xp)) if compile else None
        #: Whether the evaluation runs as one compiled program.
        self.compiled = compiler is not None
        self._compiled: Callable[..., tuple[Array, Array]] | None = (
            None if compiler is None else compiler(self._pure_evaluation)
        )

    def __call__(self, x_train: Array, y_train: Array, x_test: Array) -> tuple[Array, Array]:
        """``(loss on (x_train, y_train), model(x_test))``: a 0-d array and the test logits, on the model's backend."""
        params = self.model.named_parameters()
        if self._compiled is not None:
            return self._compiled(params, x_train, y_train, x_test)
        return self._evaluation(params, x_train, y_train, x_test)

    def _evaluation(
        self, params: Mapping[str, Array], x_train: Array, y_train: Array, x_test: Array
    ) -> tuple[Array, Array]:
        """Eval mode, whatever the model's mode: no draw, no buffer update, nothing kept for backward."""
        loss, _ = self.loss_fn(functional_call(self.model, params, x_train, training=False), y_train)
        return loss, functional_call(self.model, params, x_test, training=False)

    def _pure_evaluation(
        self, params: Mapping[str, Array], x_train: Array, y_train: Array, x_test: Array
    ) -> tuple[Array, Array]:
        with checked_trace():  # traced once per signature: the typed checks run then, no value reads
            return self._evaluation(params, x_train, y_train, x_test)


def evaluate(evaluator: Evaluator, data: Data, xp: Any, device: Any, dtype: Any) -> tuple[float, float]:
    """(loss on the whole training set, accuracy on the test set) of the evaluator's model, as floats."""
    loss, test_logits = evaluator(
        from_host(data.x_train, xp, device, dtype),
        device_labels(data.y_train, xp, device),
        from_host(data.x_test, xp, device, dtype),
    )
    accuracy = float(np.mean(np.argmax(to_host(test_logits), axis=1) == data.y_test))
    return float(loss), accuracy
