"""portable_nn.sklearn against scikit-learn's own estimator checks, array-API checks included.

``SCIPY_ARRAY_API=1`` is set before scipy is imported (scikit-learn refuses array-API dispatch without it,
and its own array-API tests set it the same way at import).
"""

from __future__ import annotations

import os

os.environ.setdefault("SCIPY_ARRAY_API", "1")

import pytest

sklearn = pytest.importorskip("sklearn")

from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from portable_nn.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

#: scikit-learn's own test instances of its MLPs use max_iter=100; small networks keep the checks quick.
ESTIMATORS = [
    MLPClassifier(hidden_layer_sizes=(16,), max_iter=100, learning_rate_init=0.01),
    MLPRegressor(hidden_layer_sizes=(16,), max_iter=100, learning_rate_init=0.01),
]


@parametrize_with_checks(ESTIMATORS)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
