"""Where an estimator computes: the caller's namespace and device under array-API dispatch, else NumPy.

The estimators call these helpers only; they use scikit-learn's public API (``get_config``) and
portable_nn's public helpers (:func:`portable_nn.place_on`, :func:`portable_nn.to_numpy`,
:func:`portable_nn.backend_of`).
"""

from __future__ import annotations

from typing import Any

import array_api_compat
import numpy as np
import sklearn

from ..backends.arrays import backend_of, place_on, to_numpy

__all__ = [
    "float_dtypes",
    "Placement",
    "check_same_placement",
    "dispatching",
    "host_plain",
    "placement_of",
    "to_output",
]


def dispatching() -> bool:
    """Whether scikit-learn's ``array_api_dispatch`` is on (``sklearn.config_context(array_api_dispatch=True)``)."""
    return bool(sklearn.get_config()["array_api_dispatch"])


def host_plain(x: Any) -> Any:
    """A validated NumPy input as a plain ndarray (a read-only memmap from joblib is viewed, not copied)."""
    return np.asarray(x) if isinstance(x, np.ndarray) else x


def float_dtypes(X: Any) -> tuple[Any, Any]:
    """The floating dtypes ``validate_data`` may keep (float64, float32), of ``X``'s namespace under dispatch."""
    if dispatching():
        try:
            xp = array_api_compat.array_namespace(X)
        except TypeError:  # a list or another array-like: scikit-learn converts it to NumPy
            return (np.float64, np.float32)
        return (xp.float64, xp.float32)
    return (np.float64, np.float32)


class Placement:
    """A backend name, native device and dtype: where the network lives (``place_on`` reads ``xp``/``device``)."""

    def __init__(self, backend: str, device: Any, dtype: Any, xp: Any) -> None:
        self.backend, self.device, self.dtype, self.xp = backend, device, dtype, xp


def placement_of(X: Any) -> Placement:
    """Where a network trained on ``X`` lives: ``X``'s backend and device under dispatch, else NumPy on the CPU."""
    if dispatching():
        xp = array_api_compat.array_namespace(X)
        return Placement(backend_of(X), array_api_compat.device(X), X.dtype, xp)
    return Placement("numpy", "cpu", X.dtype, array_api_compat.array_namespace(X))


def check_same_placement(X: Any, model: Any, estimator: Any, method: str) -> None:
    """Under dispatch, a ``ValueError`` unless ``X`` has the namespace and device the estimator was fitted on.

    The message is scikit-learn's (``check_same_namespace``): "Inputs passed to MLPClassifier.predict()
    must use the same namespace and the same device as those passed to fit()".
    """
    if not dispatching():
        return
    fitted, given = backend_of(model.xp), backend_of(X)
    if given != fitted:
        what = f"namespaces used during fit ({fitted}) and {method} ({given}) differ"
    elif array_api_compat.device(X) != model.device:
        what = f"devices used during fit ({model.device}) and {method} ({array_api_compat.device(X)}) differ"
    else:
        return
    raise ValueError(
        f"Inputs passed to {type(estimator).__name__}.{method}() must use the same namespace and the same "
        f"device as those passed to fit(): the {what}"
    )


def to_model(x: Any, model: Any, *, dtype: Any = None) -> Any:
    """``x`` on the network's backend and device (moved: the caller's namespace was checked before)."""
    return place_on(x, model, dtype=dtype, move=True)


def to_output(x: Any) -> Any:
    """A result for the caller: the array itself under dispatch (the caller's namespace), else a NumPy copy."""
    return x if dispatching() else to_numpy(x)
