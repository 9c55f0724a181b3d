"""The multi-layer perceptron shared by :class:`MLPClassifier` and :class:`MLPRegressor`: network, optimizer, loop.

Written with portable_nn's public API only: :class:`~portable_nn.Sequential` of
:class:`~portable_nn.Linear` layers and activations, :class:`~portable_nn.Adam` or
:class:`~portable_nn.SGD`, trained through :func:`~portable_nn.train_step`; the batch loop,
stopping rules, learning-rate schedules and the L2 penalty follow scikit-learn's
``sklearn.neural_network`` (see the differences listed in ``docs/guide/embedding.md``).
"""

from __future__ import annotations

import itertools
import math
import numbers
import warnings
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from ..nn.activations import ReLU, Sigmoid, Tanh
from ..nn.grad_mode import no_grad
from ..nn.linear import Linear
from ..nn.module import Module
from ..nn.sequential import Sequential
from ..optim import SGD, Adam, Optimizer
from ..training.step import train_step
from ._data import Placement, check_same_placement, to_model, to_output

__all__ = ["BaseMLP"]

_ACTIVATIONS: dict[str, Any] = {"identity": None, "logistic": Sigmoid, "tanh": Tanh, "relu": ReLU}
_SCHEDULES = ("constant", "invscaling", "adaptive")


class GlorotUniform:
    """scikit-learn's initialisation: weight and bias ~ U(±√(factor / (fan_in + fan_out))), factor 2 for logistic."""

    def __init__(self, factor: float) -> None:
        self.factor = factor

    def __call__(self, rng: np.random.Generator, in_features: int, out_features: int) -> tuple[Any, Any]:
        bound = math.sqrt(self.factor / (in_features + out_features))
        weight = rng.uniform(-bound, bound, (out_features, in_features))
        return weight, rng.uniform(-bound, bound, (out_features,))


class BaseMLP(BaseEstimator):  # type: ignore[misc]
    """Parameters, validation and the training loop; subclasses define the output layer, loss and targets."""

    def __init__(
        self,
        hidden_layer_sizes: Any = (100,),
        activation: str = "relu",
        *,
        solver: str = "adam",
        alpha: float = 0.0001,
        batch_size: int | str = "auto",
        learning_rate: str = "constant",
        learning_rate_init: float = 0.001,
        power_t: float = 0.5,
        max_iter: int = 200,
        shuffle: bool = True,
        random_state: Any = None,
        tol: float = 1e-4,
        verbose: bool = False,
        warm_start: bool = False,
        momentum: float = 0.9,
        nesterovs_momentum: bool = True,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        n_iter_no_change: int = 10,
    ) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change

    # ------------------------------------------------------------------ subclass hooks

    def _loss(self) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def _n_outputs(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def _validation_score(self, X: Any, y_original: Any) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    # ------------------------------------------------------------------ state

    def __getstate__(self) -> dict[str, Any]:
        state = dict(super().__getstate__())
        state.pop("_step_fn", None)  # a compiled step is rebuilt on the next fit (portable_nn pickles the rest)
        return state

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.array_api_support = True
        return tags

    # ------------------------------------------------------------------ validation

    def _check_params(self) -> tuple[int, ...]:
        sizes = self.hidden_layer_sizes
        sizes = (sizes,) if isinstance(sizes, numbers.Integral) else tuple(sizes)
        if any(isinstance(s, bool) or not isinstance(s, numbers.Integral) or s <= 0 for s in sizes):
            raise ValueError(f"hidden_layer_sizes must be positive integers, got {self.hidden_layer_sizes!r}")
        if self.activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}, got {self.activation!r}")
        if self.solver not in ("adam", "sgd"):
            raise ValueError(f"solver must be 'adam' or 'sgd' (lbfgs is not offered), got {self.solver!r}")
        if self.learning_rate not in _SCHEDULES:
            raise ValueError(f"learning_rate must be one of {list(_SCHEDULES)}, got {self.learning_rate!r}")
        if self.batch_size != "auto" and (
            isinstance(self.batch_size, bool)
            or not isinstance(self.batch_size, numbers.Integral)
            or self.batch_size < 1
        ):
            raise ValueError(f"batch_size must be 'auto' or a positive integer, got {self.batch_size!r}")
        for name, low, high in (
            ("alpha", 0.0, math.inf),
            ("learning_rate_init", 0.0, math.inf),
            ("power_t", 0.0, math.inf),
            ("tol", 0.0, math.inf),
            ("momentum", 0.0, 1.0),
            ("validation_fraction", 0.0, 1.0),
            ("beta_1", 0.0, 1.0),
            ("beta_2", 0.0, 1.0),
            ("epsilon", 0.0, math.inf),
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not low <= float(value) <= high:
                raise ValueError(f"{name} must be a real number in [{low}, {high}], got {value!r}")
        if not self.learning_rate_init > 0 or not self.epsilon > 0:
            raise ValueError("learning_rate_init and epsilon must be > 0")
        if self.early_stopping and not 0 < self.validation_fraction < 1:
            raise ValueError(f"validation_fraction must be in (0, 1), got {self.validation_fraction!r}")
        if not 0 <= self.beta_1 < 1 or not 0 <= self.beta_2 < 1:
            raise ValueError("beta_1 and beta_2 must be in [0, 1)")
        for name in ("max_iter", "n_iter_no_change"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        for name in ("shuffle", "verbose", "warm_start", "nesterovs_momentum", "early_stopping"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise ValueError(f"{name} must be a bool, got {getattr(self, name)!r}")
        return tuple(int(s) for s in sizes)

    # ------------------------------------------------------------------ the network

    def _build(self, where: Placement, n_features: int, n_outputs: int, hidden: tuple[int, ...]) -> None:
        """A fresh network, optimizer and counters on ``where`` (seeded from ``random_state``)."""
        rng = self._random_state_
        sizes = (n_features, *hidden, n_outputs)
        seeds = rng.randint(0, np.iinfo(np.int32).max, size=len(sizes) - 1)
        factor = 2.0 if self.activation == "logistic" else 6.0  # scikit-learn: every layer, output included
        layers: list[Module] = []
        for index, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes)):
            last = index == len(sizes) - 2
            init = GlorotUniform(factor)
            layers.append(
                Linear(
                    fan_in,
                    fan_out,
                    xp=where.backend,
                    device=where.device,
                    dtype=where.dtype,
                    seed=int(seeds[index]),
                    init=init,
                )
            )
            activation = _ACTIVATIONS[self.activation]
            if not last and activation is not None:
                layers.append(activation())
        self.model_ = Sequential(*layers)
        self.optimizer_ = self._optimizer(self.model_)
        self._step_fn: Any = None
        self._best_state = None
        self.n_iter_ = 0
        self.t_ = 0
        self.loss_curve_: list[float] = []
        self._no_improvement_count = 0
        if self.early_stopping:
            self.validation_scores_: list[float] | None = []
            self.best_validation_score_: float | None = -np.inf
            self.best_loss_: float | None = None
        else:
            self.validation_scores_ = None
            self.best_validation_score_ = None
            self.best_loss_ = np.inf

    def _optimizer(self, model: Module) -> Optimizer:
        """Adam or SGD; the L2 penalty as weight decay on the weights only (scikit-learn does not decay intercepts)."""
        biases = [{"params": lambda name: name.endswith("bias"), "weight_decay": 0.0}]
        if self.solver == "adam":
            return Adam(
                model,
                lr=float(self.learning_rate_init),
                betas=(float(self.beta_1), float(self.beta_2)),
                eps=float(self.epsilon),
                param_groups=biases,
            )
        return SGD(
            model,
            lr=float(self.learning_rate_init),
            momentum=float(self.momentum),
            nesterov=bool(self.nesterovs_momentum) and self.momentum > 0,
            param_groups=biases,
        )

    def _forward(self, X: Any, method: str) -> Any:
        """The network's output for validated ``X`` (moved onto its placement and dtype), without gradients."""
        check_same_placement(X, self.model_, self, method)
        x = to_model(X, self.model_, dtype=self.model_.dtype)
        with no_grad():
            return self.model_(x)

    # ------------------------------------------------------------------ training

    def _fit_arrays(self, X: Any, targets: Any, y_original: Any, *, incremental: bool, fresh: bool) -> None:
        """Train on ``X`` (on the network's placement) and ``targets`` (what the loss takes), scikit-learn's loop."""
        n_samples = X.shape[0]
        xp = self.model_.xp
        rng = self._random_state_
        X_val = y_val = None
        if self.early_stopping and not incremental:
            stratify = self._stratify(y_original)
            train, val = train_test_split(
                np.arange(n_samples), test_size=self.validation_fraction, random_state=rng, stratify=stratify
            )
            if val.shape[0] < 2:
                raise ValueError(
                    f"The validation set is too small: {val.shape[0]} samples; increase validation_fraction"
                )
            X_val, y_val = self._take(X, val), _take_host(y_original, val)
            X, targets, n_samples = self._take(X, train), self._take(targets, train), train.shape[0]
        batch = min(200, n_samples) if self.batch_size == "auto" else int(np.clip(self.batch_size, 1, n_samples))
        if self.batch_size != "auto" and self.batch_size > n_samples:
            warnings.warn(
                "Got `batch_size` less than 1 or larger than sample size. It is going to be clipped", stacklevel=3
            )
        decay = float(self.alpha) / batch  # scikit-learn: alpha * W / n_samples of the batch
        self.optimizer_.param_groups[0]["weight_decay"] = decay
        if not incremental and not fresh:  # warm start: scikit-learn starts a new optimizer for every fit
            self.optimizer_, self._step_fn = self._optimizer(self.model_), None
        if getattr(self, "_step_fn", None) is None:  # none yet, or dropped by pickling
            self._step_fn = train_step(self.model_, self._loss(), self.optimizer_)
        step = self._step_fn
        n_batches = math.ceil(n_samples / batch)
        for _ in range(1 if incremental else int(self.max_iter)):
            if self.shuffle:
                order = self._to_device(rng.permutation(n_samples))
                x_epoch, t_epoch = xp.take(X, order, axis=0), xp.take(targets, order, axis=0)
            else:
                x_epoch, t_epoch = X, targets
            total: Any = 0.0
            for start in range(0, n_samples, batch):
                stop = min(start + batch, n_samples)
                total = total + step(x_epoch[start:stop, ...], t_epoch[start:stop, ...]) * (stop - start)
            loss = float(total) / n_samples + self._penalty(n_batches, n_samples)
            self.n_iter_ += 1
            self.t_ += n_samples
            self.loss_curve_.append(loss)
            if self.verbose:
                print(f"Iteration {self.n_iter_}, loss = {loss:.8f}")
            if self.solver == "sgd" and self.learning_rate == "invscaling":
                self.optimizer_.lr = float(self.learning_rate_init) / (self.t_ + 1) ** float(self.power_t)
            self._update_no_improvement_count(X_val, y_val)
            if self._no_improvement_count > self.n_iter_no_change:
                if self.solver == "sgd" and self.learning_rate == "adaptive" and self.optimizer_.lr > 1e-6:
                    self.optimizer_.lr = self.optimizer_.lr / 5.0
                    self._no_improvement_count = 0
                    continue
                break
            if not incremental and self.n_iter_ == self.max_iter:
                warnings.warn(
                    f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached and the optimization "
                    "hasn't converged yet.",
                    ConvergenceWarning,
                    stacklevel=3,
                )
        if self.early_stopping and not incremental and self._best_state is not None:
            self.model_.load_state_dict(self._best_state)
        self._publish()

    def _penalty(self, n_batches: int, n_samples: int) -> float:
        """scikit-learn's reported L2 term: per batch 0.5·alpha·Σ‖W‖²/batch size, weighted by batch size."""
        if not self.alpha:
            return 0.0
        xp = self.model_.xp
        squares = sum(float(xp.sum(layer.weight * layer.weight)) for layer in self._linears())
        return n_batches * 0.5 * float(self.alpha) * squares / n_samples

    def _update_no_improvement_count(self, X_val: Any, y_val: Any) -> None:
        if self.early_stopping and X_val is not None:
            score = self._validation_score(X_val, y_val)
            assert self.validation_scores_ is not None and self.best_validation_score_ is not None
            self.validation_scores_.append(score)
            self._no_improvement_count = (
                self._no_improvement_count + 1 if score < self.best_validation_score_ + self.tol else 0
            )
            if score > self.best_validation_score_:
                self.best_validation_score_ = score
                self._best_state = {k: v for k, v in self.model_.state_dict().items()}  # never mutated: no copy
            return
        last = self.loss_curve_[-1]
        best = np.inf if self.best_loss_ is None else self.best_loss_
        self._no_improvement_count = self._no_improvement_count + 1 if last > best - self.tol else 0
        if last < best:
            self.best_loss_ = last

    _best_state: dict[str, Any] | None = None

    def _linears(self) -> list[Linear]:
        return [layer for layer in self.model_ if isinstance(layer, Linear)]

    def _publish(self) -> None:
        """``coefs_`` (n_in, n_out) and ``intercepts_``: copies of the weights, in the caller's namespace."""
        xp = self.model_.xp
        self.coefs_ = [to_output(xp.asarray(xp.permute_dims(la.weight, (1, 0)), copy=True)) for la in self._linears()]
        self.intercepts_ = [to_output(xp.asarray(la.bias, copy=True)) for la in self._linears()]

    def _stratify(self, y_original: Any) -> Any:
        return None

    def _take(self, a: Any, indices: Any) -> Any:
        return self.model_.xp.take(a, self._to_device(indices), axis=0)

    def _to_device(self, indices: Any) -> Any:
        return to_model(np.asarray(indices, dtype=np.int64), self.model_)


def _take_host(y: Any, indices: Any) -> Any:
    """Rows of targets kept on the host (the original labels, for validation scores)."""
    return y[indices]
