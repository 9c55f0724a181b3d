"""portable_nn.sklearn on every backend x device x dtype, and the public array helpers the estimators use.

Under ``sklearn.config_context(array_api_dispatch=True)`` the estimators train in the caller's namespace and on
its device and give back arrays there (torch tensors in, torch tensors out); the same seed gives NumPy's numbers.
Fitted estimators survive pickle, joblib and ``clone``.
"""

from __future__ import annotations

import os

os.environ.setdefault("SCIPY_ARRAY_API", "1")  # before scipy's import: scikit-learn's array-API dispatch needs it

import io
import pickle
import warnings

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")

from sklearn.base import clone  # noqa: E402

import portable_nn as pnn  # noqa: E402
from portable_nn.sklearn import MLPClassifier, MLPRegressor  # noqa: E402
from portable_nn.testing import assert_close, to_numpy  # noqa: E402

rng = np.random.default_rng(0)
X_HOST = rng.standard_normal((40, 3))
LABELS = (X_HOST[:, 0] > 0).astype(np.int64) + (X_HOST[:, 1] > 0)  # three classes
TARGET = np.stack([X_HOST[:, 0] - X_HOST[:, 2], X_HOST[:, 1] ** 2], axis=1)


#: The namespaces scikit-learn's own array-API tests cover (its metrics, e.g. r2_score, assume them).
SKLEARN_NAMESPACES = {"numpy", "torch", "array_api_strict", "cupy"}


class _Where:
    def __init__(self, xp, device, dtype):
        self.xp, self.device, self.dtype = xp, device, dtype


def _estimators():
    params = {"hidden_layer_sizes": (8,), "max_iter": 3, "random_state": 0, "learning_rate_init": 0.01}
    return MLPClassifier(**params), MLPRegressor(**params)


def _fit_quietly(estimator, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sklearn.exceptions.ConvergenceWarning)
        return estimator.fit(X, y)


def test_dispatch_trains_and_answers_in_the_callers_namespace_and_device(xp, device, dtype, dtype_name):
    where = _Where(xp, device, dtype)
    X = pnn.place_on(X_HOST, where, dtype=dtype, move=True)
    labels, target = pnn.place_on(LABELS, where, move=True), pnn.place_on(TARGET, where, dtype=dtype, move=True)
    classifier, regressor = _estimators()
    with sklearn.config_context(array_api_dispatch=True):
        _fit_quietly(classifier, X, labels)
        _fit_quietly(regressor, X, target)
        outputs = {
            "classes_": classifier.classes_,
            "predict": classifier.predict(X),
            "predict_proba": classifier.predict_proba(X),
            "regressor.predict": regressor.predict(X),
            "coefs_": classifier.coefs_[0],
            "intercepts_": regressor.intercepts_[-1],
        }
        assert isinstance(classifier.score(X, labels), float)
        if pnn.backend_of(xp) in SKLEARN_NAMESPACES:  # r2_score assigns through a mask: not on JAX or Dask
            assert isinstance(regressor.score(X, target), float)
    for name, value in outputs.items():
        assert pnn.backend_of(value) == pnn.backend_of(xp), name
        assert pnn.place_on(value, where, dtype=value.dtype) is value, f"{name} left the caller's device"
    # the same seed on NumPy gives the same numbers (same initial bytes, same batches)
    reference_classifier, reference_regressor = _estimators()
    X32 = X_HOST.astype(dtype_name)
    _fit_quietly(reference_classifier, X32, LABELS)
    _fit_quietly(reference_regressor, X32, TARGET)
    rtol, atol = pnn.testing.tolerance(dtype_name)
    assert_close(outputs["predict_proba"], reference_classifier.predict_proba(X32), rtol=10 * rtol, atol=10 * atol)
    assert_close(outputs["regressor.predict"], reference_regressor.predict(X32), rtol=10 * rtol, atol=10 * atol)
    np.testing.assert_array_equal(to_numpy(outputs["classes_"]), [0, 1, 2])


def test_fitted_estimators_round_trip_and_answer_numpy_without_dispatch(xp, device, dtype, dtype_name):
    where = _Where(xp, device, dtype)
    X = pnn.place_on(X_HOST, where, dtype=dtype, move=True)
    joblib = pytest.importorskip("joblib")
    for estimator, y in zip(_estimators(), (LABELS, TARGET), strict=True):
        with sklearn.config_context(array_api_dispatch=True):
            _fit_quietly(estimator, X, pnn.place_on(y, where, dtype=None if y is LABELS else dtype, move=True))
            expected = to_numpy(estimator.predict(X))
        buffer = io.BytesIO()
        joblib.dump(estimator, buffer)
        buffer.seek(0)
        for copied in (pickle.loads(pickle.dumps(estimator)), joblib.load(buffer)):
            with sklearn.config_context(array_api_dispatch=True):
                np.testing.assert_array_equal(to_numpy(copied.predict(X)), expected)
            assert copied.loss_curve_ == estimator.loss_curve_ and copied.model_.xp is estimator.model_.xp
        unfitted = clone(estimator)
        assert unfitted.get_params() == estimator.get_params() and not hasattr(unfitted, "model_")
        # without dispatch: NumPy in, NumPy out, even from a network on another backend (moved, cast explicitly)
        answer = estimator.predict(X_HOST)
        assert type(answer) is np.ndarray
        np.testing.assert_array_equal(answer, expected)


def test_partial_fit_and_warm_start_continue_training():
    classifier = MLPClassifier(hidden_layer_sizes=(8,), random_state=0)
    with pytest.raises(ValueError, match="classes must be passed"):
        classifier.partial_fit(X_HOST, LABELS)
    for _ in range(3):
        classifier.partial_fit(X_HOST, LABELS, classes=[0, 1, 2])
    assert classifier.n_iter_ == 3 and len(classifier.loss_curve_) == 3
    classifier = pickle.loads(pickle.dumps(classifier))  # the compiled step is not pickled: rebuilt on demand
    classifier.partial_fit(X_HOST, LABELS)
    assert classifier.n_iter_ == 4
    with pytest.raises(ValueError, match="not seen"):
        classifier.partial_fit(X_HOST, LABELS + 1)
    warm = MLPRegressor(hidden_layer_sizes=(8,), max_iter=2, warm_start=True, random_state=0)
    _fit_quietly(warm, X_HOST, TARGET)
    first = [c.copy() for c in warm.coefs_]
    _fit_quietly(warm, X_HOST, TARGET)
    assert warm.n_iter_ == 4 and not np.array_equal(first[0], warm.coefs_[0])


def test_sklearn_shapes_of_fitted_attributes():
    classifier = _fit_quietly(MLPClassifier(hidden_layer_sizes=(5, 4), max_iter=2, random_state=0), X_HOST, LABELS)
    assert [c.shape for c in classifier.coefs_] == [(3, 5), (5, 4), (4, 3)]
    assert [b.shape for b in classifier.intercepts_] == [(5,), (4,), (3,)]
    binary = _fit_quietly(MLPClassifier(hidden_layer_sizes=(5,), max_iter=2, random_state=0), X_HOST, LABELS > 0)
    assert binary.coefs_[-1].shape == (5, 1) and binary.predict_proba(X_HOST).shape == (40, 2)
    assert binary.n_features_in_ == 3 and binary.best_loss_ == min(binary.loss_curve_)


def test_public_array_helpers(xp, device, dtype):
    where = _Where(xp, device, dtype)
    x = pnn.place_on(np.arange(6.0).reshape(2, 3), where, dtype=dtype, move=True)
    assert pnn.backend_of(x) == pnn.backend_of(xp) == pnn.backend_of(pnn.backend_of(xp))
    host = pnn.to_numpy(x)
    assert type(host) is np.ndarray and host.tolist() == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]
    assert pnn.place_on(x, where) is x
    with pytest.raises(pnn.NamespaceError, match="expected an array"):
        pnn.place_on([[1.0]], where)
    if pnn.backend_of(xp) != "numpy":
        with pytest.raises(pnn.NamespaceError, match="move=True"):
            pnn.place_on(np.ones(2), where)
    other = "float64" if pnn.testing.to_numpy(x).dtype == np.float32 else "float32"
    if other in pnn.backends.get_adapter(pnn.backend_of(xp)).supported_dtypes(device):
        cast = pnn.place_on(x, where, dtype=other)
        with pytest.raises(pnn.DTypeError, match="never casts silently"):
            pnn.place_on(cast, where)


def test_to_numpy_copies_a_numpy_array():
    x = np.zeros(2)
    pnn.to_numpy(x)[0] = 1.0
    assert x[0] == 0.0
    with pytest.raises(pnn.NamespaceError):
        pnn.to_numpy([1.0, 2.0])


@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_same_trajectory_as_sklearn_from_the_same_weights(solver):
    """From scikit-learn's initial weights, full batches in order: scikit-learn's losses and weights (its oracle)."""
    from sklearn.neural_network import MLPClassifier as SklearnMLP

    params = {
        "hidden_layer_sizes": (6,),
        "solver": solver,
        "batch_size": X_HOST.shape[0],
        "shuffle": False,
        "alpha": 0.0,
        "tol": 0.0,
        "n_iter_no_change": 50,
        "learning_rate_init": 0.05,
        "random_state": 0,
    }
    theirs = _fit_quietly(SklearnMLP(max_iter=1, **params), X_HOST, LABELS)
    ours = _fit_quietly(MLPClassifier(max_iter=1, **params), X_HOST, LABELS)
    state = {}
    for index, (coef, intercept) in enumerate(zip(theirs.coefs_, theirs.intercepts_, strict=True)):
        state[f"{2 * index}.weight"], state[f"{2 * index}.bias"] = coef.T.copy(), intercept.copy()
    ours.model_.load_state_dict(state)
    for estimator in (theirs, ours):  # warm start: the same weights, a new optimizer (as scikit-learn does)
        _fit_quietly(estimator.set_params(warm_start=True, max_iter=10), X_HOST, LABELS)
    # SGD: the same arithmetic up to rounding; Adam: ε added after the bias correction (PyTorch's), not before
    rtol = 1e-9 if solver == "sgd" else 1e-4
    np.testing.assert_allclose(ours.loss_curve_[1:], theirs.loss_curve_[1:], rtol=rtol)
    for mine, reference in zip(ours.coefs_, theirs.coefs_, strict=True):
        np.testing.assert_allclose(mine, reference, rtol=rtol, atol=rtol * 1e-2)
