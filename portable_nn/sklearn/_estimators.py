"""``MLPClassifier`` and ``MLPRegressor``: scikit-learn estimators that train a portable_nn network.

Under ``sklearn.config_context(array_api_dispatch=True)`` they train and predict in the caller's
namespace and on the caller's device (torch tensors in, torch tensors out; ``classes_``,
``coefs_`` and ``intercepts_`` there too); otherwise on NumPy, as scikit-learn's own.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.metrics import r2_score
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from ..backends.arrays import to_numpy
from ..losses import BCEWithLogitsLoss, CrossEntropyLoss, MSELoss
from ..nn.grad_mode import no_grad
from ._base import BaseMLP
from ._data import dispatching, float_dtypes, host_plain, placement_of, to_model, to_output

__all__ = ["MLPClassifier", "MLPRegressor"]


class HalfSquaredError:
    """scikit-learn's squared error: ``mean((prediction - y)²) / 2`` and its gradient (a portable_nn loss_fn)."""

    def __init__(self) -> None:
        self.mse = MSELoss()

    def __call__(self, prediction: Any, target: Any) -> tuple[Any, Any]:
        loss, grad = self.mse(prediction, target)
        return loss * 0.5, grad * 0.5


def _softmax(xp: Any, z: Any) -> Any:
    shifted = z - xp.max(z, axis=1, keepdims=True)
    e = xp.exp(shifted)
    return e / xp.sum(e, axis=1, keepdims=True)


class MLPClassifier(ClassifierMixin, BaseMLP):  # type: ignore[misc]
    """Multi-layer perceptron classifier on portable_nn, with scikit-learn's parameters, attributes and defaults.

    Minimises the log-loss (softmax cross-entropy; a single logistic output for two classes) with
    Adam or SGD, like ``sklearn.neural_network.MLPClassifier`` (no ``lbfgs`` solver, no
    ``sample_weight``, no multilabel targets). Under ``sklearn.config_context(array_api_dispatch=True)``
    it computes in the namespace and on the device of ``X`` (NumPy, torch, CuPy, JAX, array-api-strict)
    and returns arrays there.

    Parameters
    ----------
    hidden_layer_sizes : int or tuple of int, default=(100,)
        Width of each hidden layer.
    activation : {"identity", "logistic", "tanh", "relu"}, default="relu"
        Hidden-layer activation.
    solver : {"adam", "sgd"}, default="adam"
        :class:`portable_nn.Adam` or :class:`portable_nn.SGD` (momentum, Nesterov as scikit-learn's).
    alpha : float, default=1e-4
        L2 penalty on the weights (not the intercepts), as weight decay ``alpha / batch_size``.
    batch_size : int or "auto", default="auto"
        Minibatch size; ``"auto"`` is ``min(200, n_samples)``.
    learning_rate : {"constant", "invscaling", "adaptive"}, default="constant"
        SGD schedule (Adam always uses ``learning_rate_init``).
    learning_rate_init : float, default=1e-3
        Initial step size.
    power_t : float, default=0.5
        Exponent of the ``"invscaling"`` schedule.
    max_iter : int, default=200
        Epochs (passes over the data).
    shuffle : bool, default=True
        Shuffle the samples every epoch.
    random_state : int, RandomState or None, default=None
        Seeds the initial weights, the shuffling and the validation split.
    tol : float, default=1e-4
        Improvement below which an epoch counts as no improvement.
    verbose : bool, default=False
        Print the loss of every epoch.
    warm_start : bool, default=False
        Continue from the previous fit's network.
    momentum : float, default=0.9
        SGD momentum.
    nesterovs_momentum : bool, default=True
        Nesterov momentum for SGD.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the data (stratified) and stop when its accuracy stops improving.
    validation_fraction : float, default=0.1
        Held-out fraction for early stopping.
    beta_1, beta_2, epsilon : float, default=0.9, 0.999, 1e-8
        Adam's parameters.
    n_iter_no_change : int, default=10
        Epochs without improvement before stopping.

    Attributes
    ----------
    classes_ : array of shape (n_classes,)
        The class labels (in the caller's namespace under dispatch).
    n_features_in_ : int
        Number of features seen in fit.
    loss_curve_ : list of float
        The loss of every epoch (data loss plus the L2 term).
    best_loss_ : float or None
        The lowest loss seen (None with early stopping).
    n_iter_ : int
        Epochs run.
    coefs_, intercepts_ : list of arrays
        Weights, shape (n_in, n_out), and intercepts of every layer.
    model_ : portable_nn.Sequential
        The trained network; ``optimizer_`` its optimizer.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from portable_nn.sklearn import MLPClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = MLPClassifier(hidden_layer_sizes=(16,), max_iter=300, learning_rate_init=0.01, random_state=0).fit(X, y)
    >>> clf.score(X, y) > 0.9, clf.classes_.tolist()
    (True, [0, 1, 2])
    """

    def fit(self, X: Any, y: Any) -> MLPClassifier:
        """Train on ``X`` (n_samples, n_features) and class labels ``y`` (n_samples,); returns ``self``."""
        return self._fit(X, y, incremental=False, classes=None)

    def partial_fit(self, X: Any, y: Any, classes: Any = None) -> MLPClassifier:
        """One epoch on ``X``, ``y``; ``classes`` (every label) is required on the first call."""
        return self._fit(X, y, incremental=True, classes=classes)

    def _fit(self, X: Any, y: Any, *, incremental: bool, classes: Any) -> MLPClassifier:
        hidden = self._check_params()
        first = not (incremental or self.warm_start) or not hasattr(self, "classes_")
        X, y = validate_data(self, X, y, dtype=float_dtypes(X), reset=first, y_numeric=False)
        X = host_plain(X)
        y_host = column_or_1d(to_numpy(y) if dispatching() and not isinstance(y, np.ndarray) else y, warn=True)
        check_classification_targets(y_host)
        if first:
            if incremental and classes is None:
                raise ValueError("classes must be passed on the first call to partial_fit.")
            labels = np.unique(y_host) if classes is None else np.unique(np.asarray(classes))
            if labels.shape[0] < 2:
                raise ValueError(
                    f"MLPClassifier needs at least 2 classes; got {labels.shape[0]} class: {labels.tolist()}"
                )
            self._labels = _Labels(labels)
            self._random_state_ = check_random_state(self.random_state)
            where = placement_of(X)
            self._build(where, X.shape[1], 1 if labels.shape[0] == 2 else labels.shape[0], hidden)
            self.classes_ = to_output(to_model(labels, self.model_)) if _numeric(labels) else labels
        elif classes is not None and not np.array_equal(np.unique(np.asarray(classes)), self._labels.values):
            raise ValueError(f"`classes={classes!r}` is not the same as on the first call to partial_fit")
        unseen = np.setdiff1d(y_host, self._labels.values)
        if unseen.size:
            raise ValueError(f"y contains labels not seen in the first fit: {unseen.tolist()}")
        index = np.searchsorted(self._labels.values, y_host)
        X = to_model(X, self.model_, dtype=self.model_.dtype)
        if self._labels.values.shape[0] == 2:
            targets = to_model(index.astype(np.float64)[:, None], self.model_, dtype=self.model_.dtype)
        else:
            targets = to_model(index.astype(np.int64), self.model_)
        self._fit_arrays(X, targets, index, incremental=incremental, fresh=first)
        return self

    def _loss(self) -> Any:
        return BCEWithLogitsLoss() if self._labels.values.shape[0] == 2 else CrossEntropyLoss()

    def _stratify(self, y_original: Any) -> Any:
        return y_original

    def _validation_score(self, X: Any, index: Any) -> float:
        return float(np.mean(to_numpy(self._predict_index(X, trusted=True)) == index))

    def _predict_index(self, X: Any, *, trusted: bool = False, method: str = "predict") -> Any:
        xp = self.model_.xp
        if trusted:
            with no_grad():
                z = self.model_(X)
        else:
            z = self._forward(X, method)
        if self._labels.values.shape[0] == 2:
            return xp.astype(z[:, 0] > 0, xp.int64)
        return xp.argmax(z, axis=1)

    def _validated(self, X: Any) -> Any:
        check_is_fitted(self)
        return host_plain(validate_data(self, X, dtype=float_dtypes(X), reset=False))

    def predict(self, X: Any) -> Any:
        """The most probable class of each row of ``X``: shape (n_samples,), ``classes_``' dtype."""
        index = self._predict_index(self._validated(X))
        if dispatching() and _numeric(self._labels.values):
            return self.model_.xp.take(to_model(self._labels.values, self.model_), index, axis=0)
        return self._labels.values[to_numpy(index)]

    def predict_proba(self, X: Any) -> Any:
        """Class probabilities, shape (n_samples, n_classes), columns in the order of ``classes_``."""
        return self._proba(X, "predict_proba")

    def _proba(self, X: Any, method: str) -> Any:
        z = self._forward(self._validated(X), method)
        xp = self.model_.xp
        if self._labels.values.shape[0] == 2:
            p = 1.0 / (1.0 + xp.exp(-z))
            proba = xp.concat([1.0 - p, p], axis=1)
        else:
            proba = _softmax(xp, z)
        return to_output(proba)

    def predict_log_proba(self, X: Any) -> Any:
        """``log(predict_proba(X))``."""
        proba = self._proba(X, "predict_log_proba")
        if dispatching():
            return self.model_.xp.log(proba)
        return np.log(proba)


class MLPRegressor(RegressorMixin, BaseMLP):  # type: ignore[misc]
    """Multi-layer perceptron regressor on portable_nn, with scikit-learn's parameters, attributes and defaults.

    Minimises scikit-learn's squared error ``mean((prediction - y)²) / 2`` (identity output) with Adam or
    SGD; ``y`` may have several outputs. Parameters and attributes are :class:`MLPClassifier`'s (no
    ``classes_``); with ``early_stopping`` the validation score is R². Under
    ``sklearn.config_context(array_api_dispatch=True)`` it computes in the namespace and on the device of ``X``.

    Parameters
    ----------
    hidden_layer_sizes, activation, solver, alpha, batch_size, learning_rate, learning_rate_init, power_t, \
max_iter, shuffle, random_state, tol, verbose, warm_start, momentum, nesterovs_momentum, early_stopping, \
validation_fraction, beta_1, beta_2, epsilon, n_iter_no_change
        As :class:`MLPClassifier`.

    Examples
    --------
    >>> import numpy as np
    >>> from portable_nn.sklearn import MLPRegressor
    >>> X = np.random.default_rng(0).standard_normal((200, 3))
    >>> y = X @ np.array([1.0, -2.0, 0.5]) + 1.0
    >>> reg = MLPRegressor(hidden_layer_sizes=(16,), learning_rate_init=0.01, random_state=0).fit(X, y)
    >>> reg.score(X, y) > 0.95, reg.predict(X[:2]).shape
    (True, (2,))
    """

    def fit(self, X: Any, y: Any) -> MLPRegressor:
        """Train on ``X`` (n_samples, n_features) and targets ``y`` (n_samples,) or (n_samples, n_outputs)."""
        return self._fit(X, y, incremental=False)

    def partial_fit(self, X: Any, y: Any) -> MLPRegressor:
        """One epoch on ``X``, ``y`` (continuing the current network when there is one)."""
        return self._fit(X, y, incremental=True)

    def _fit(self, X: Any, y: Any, *, incremental: bool) -> MLPRegressor:
        hidden = self._check_params()
        first = not (incremental or self.warm_start) or not hasattr(self, "model_")
        X, y = validate_data(self, X, y, dtype=float_dtypes(X), reset=first, multi_output=True, y_numeric=True)
        X = host_plain(X)
        if first:
            self._random_state_ = check_random_state(self.random_state)
            y_shape = tuple(y.shape)
            self._one_output = len(y_shape) == 1
            self._build(placement_of(X), X.shape[1], 1 if len(y_shape) == 1 else y_shape[1], hidden)
        X = to_model(X, self.model_, dtype=self.model_.dtype)
        y = host_plain(y) if isinstance(y, np.ndarray) else y
        targets = to_model(y, self.model_, dtype=self.model_.dtype)
        xp = self.model_.xp
        if targets.ndim == 1:
            targets = xp.reshape(targets, (-1, 1))
        if targets.shape[1] != self.model_[-1].out_features:
            raise ValueError(
                f"y has {targets.shape[1]} outputs, the network was fitted with {self.model_[-1].out_features}"
            )
        host = to_numpy(targets)
        self._fit_arrays(X, targets, host, incremental=incremental, fresh=first)
        return self

    def _loss(self) -> Any:
        return HalfSquaredError()

    def _validation_score(self, X: Any, y_host: Any) -> float:
        with no_grad():
            prediction = to_numpy(self.model_(X))
        return float(r2_score(y_host, prediction))

    def predict(self, X: Any) -> Any:
        """Predictions, shape (n_samples,) for a one-output fit, else (n_samples, n_outputs)."""
        check_is_fitted(self)
        z = self._forward(host_plain(validate_data(self, X, dtype=float_dtypes(X), reset=False)), "predict")
        if self._one_output:
            z = self.model_.xp.reshape(z, (-1,))
        return to_output(z)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


def _numeric(labels: Any) -> bool:
    return bool(np.issubdtype(labels.dtype, np.number) or labels.dtype == np.bool_)


class _Labels:
    """The class labels as a host NumPy array, out of ``vars(estimator)`` (``classes_`` is the public copy)."""

    def __init__(self, values: Any) -> None:
        self.values = values
