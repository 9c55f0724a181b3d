"""scikit-learn estimators on portable_nn: ``MLPClassifier``, ``MLPRegressor`` (``pip install portable-nn[sklearn]``).

Drop-in for ``sklearn.neural_network``'s estimators of the same names (parameters, defaults, fitted
attributes; solvers ``"adam"`` and ``"sgd"``), trained by :func:`portable_nn.train_step`. Under
``sklearn.config_context(array_api_dispatch=True)`` they train and predict in the namespace and on
the device of the caller's arrays — torch tensors in, torch tensors out — and pass scikit-learn's
``check_estimator``, its array-API checks included.

>>> import numpy as np
>>> from portable_nn.sklearn import MLPClassifier
>>> X = np.random.default_rng(0).standard_normal((60, 4))
>>> clf = MLPClassifier(hidden_layer_sizes=(8,), learning_rate_init=0.05, random_state=0).fit(X, X[:, 0] > 0)
>>> clf.predict(X[:3]).shape
(3,)
"""

from __future__ import annotations

try:
    import sklearn  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("portable_nn.sklearn needs scikit-learn: pip install 'portable-nn[sklearn]'") from exc

from ._estimators import MLPClassifier, MLPRegressor

__all__ = ["MLPClassifier", "MLPRegressor"]
