"""One small workload of the whole library, run on any namespace and compared with NumPy in float64.

Used by the third-party tier (``test_third_party.py``: marray, ndonnx, sparse, cubed through the
plugin) and by the minimum-standard tests (``tests/backends/test_standard_minimum.py``: array-api-strict at
``api_version="2023.12"``, with and without boolean indexing and data-dependent shapes). Each step
returns host (NumPy) copies of what it computed; a step whose namespace lacks a function raises
:class:`NamespaceGap` naming it, so the caller can skip with the gap as the reason.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

import portable_nn as pnn
from portable_nn import _backend

Results = dict[str, np.ndarray]

_RNG = np.random.default_rng(20231212)
X = _RNG.standard_normal((6, 4))
X3 = _RNG.standard_normal((2, 3, 4))
LOGITS = _RNG.standard_normal((6, 3))
CLASSES = np.array([0, 2, 1, 2, 0, 1])
IGNORED = np.array([0, -1, 1, 2, -1, 1])
PROBS = np.abs(_RNG.standard_normal((6, 3)))
PROBS /= PROBS.sum(axis=1, keepdims=True)
REGRESSION = _RNG.standard_normal((6, 3))
BINARY = (_RNG.standard_normal((6, 3)) > 0).astype(np.float64)
CLASS_WEIGHT = np.array([0.5, 2.0, 1.0])


class NamespaceGap(Exception):
    """The namespace lacks a function (or an operation on its arrays) that the step needs."""


def _host(value: Any) -> np.ndarray:
    return np.asarray(_backend.to_host(value), dtype=np.float64)


class Workload:
    """The arrays of one backend, and the steps that run there."""

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self.xp = _backend.resolve_namespace(backend)
        self.device = _backend.resolve_device(self.xp)

    def array(self, host: np.ndarray) -> Any:
        if host.dtype.kind in "iu":
            return self.xp.asarray(host.astype(np.int64), device=self.device)
        return _backend.from_host(host, self.xp, self.device, "float64")

    def model(self) -> pnn.Sequential:
        kwargs: dict[str, Any] = {"xp": self.backend, "device": self.device, "dtype": "float64"}
        return pnn.Sequential(
            pnn.Linear(4, 5, seed=1, **kwargs),
            pnn.ReLU(),
            pnn.Linear(5, 5, seed=2, **kwargs),
            pnn.Tanh(),
            pnn.Linear(5, 3, seed=3, **kwargs),
            pnn.Sigmoid(),
        )

    # ------------------------------------------------------------------ steps

    def forward_backward(self) -> Results:
        """Linear on a 3-d input, and a Sequential of every activation: forward and value_and_grad."""
        layer = pnn.Linear(4, 3, xp=self.backend, device=self.device, dtype="float64", seed=0)
        out = {"linear_nd": _host(layer(self.array(X3)))}
        model = self.model()
        loss, grads = pnn.value_and_grad(model, pnn.MSELoss())(
            model.named_parameters(), self.array(X), self.array(BINARY)
        )
        out["sequential"] = _host(model(self.array(X)))
        out["loss"] = _host(loss)
        out |= {f"grad.{name}": _host(g) for name, g in grads.items()}
        return out

    def losses(self) -> Results:
        """Every loss, with its options, as (loss, grad) on fixed inputs."""
        xp_weight = self.array(CLASS_WEIGHT)
        cases: list[tuple[str, Any, np.ndarray, np.ndarray]] = [
            ("ce", pnn.CrossEntropyLoss(), LOGITS, CLASSES),
            ("ce_weight_ignore", pnn.CrossEntropyLoss(xp_weight, ignore_index=-1), LOGITS, IGNORED),
            ("ce_smooth_sum", pnn.CrossEntropyLoss(label_smoothing=0.1, reduction="sum"), LOGITS, CLASSES),
            ("ce_probs", pnn.CrossEntropyLoss(), LOGITS, PROBS),
            ("ce_none", pnn.CrossEntropyLoss(reduction="none"), LOGITS, CLASSES),
            ("nll", pnn.NLLLoss(xp_weight), LOGITS, CLASSES),
            ("bce", pnn.BCEWithLogitsLoss(pos_weight=self.array(CLASS_WEIGHT)), LOGITS, BINARY),
            ("mse", pnn.MSELoss(), LOGITS, REGRESSION),
            ("l1", pnn.L1Loss(reduction="sum"), LOGITS, REGRESSION),
            ("huber", pnn.HuberLoss(delta=0.5), LOGITS, REGRESSION),
            ("smooth_l1", pnn.SmoothL1Loss(beta=0.5, reduction="none"), LOGITS, REGRESSION),
        ]
        out: Results = {}
        for name, loss_fn, logits, target in cases:
            loss, grad = _gap_checked(lambda f=loss_fn, a=logits, b=target: f(self.array(a), self.array(b)))
            out[f"{name}.loss"], out[f"{name}.grad"] = _host(loss), _host(grad)
        return out

    def training(self, only: tuple[str, ...] | None = None) -> Results:
        """Two train_step steps of every optimizer (with options; ``only`` these names), then clip_grad_norm_."""
        optimizers: list[tuple[str, Callable[[pnn.Module], pnn.Optimizer]]] = [
            ("sgd", lambda m: pnn.SGD(m, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)),
            ("adam", lambda m: pnn.Adam(m, lr=0.01, amsgrad=True)),
            ("adamw", lambda m: pnn.AdamW(m, lr=0.01)),
            ("rmsprop", lambda m: pnn.RMSprop(m, lr=0.01, momentum=0.5, centered=True)),
            ("adagrad", lambda m: pnn.Adagrad(m, lr=0.1)),
        ]
        out: Results = {}
        x, y = self.array(X), self.array(CLASSES)
        for name, build in optimizers:
            if only is not None and name not in only:
                continue
            model = self.model()
            step = pnn.train_step(model, pnn.CrossEntropyLoss(), build(model))
            for i in range(2):
                out[f"{name}.loss{i}"] = _host(_gap_checked(lambda s=step: s(x, y)))
            out |= {f"{name}.{key}": _host(v) for key, v in model.state_dict().items()}
        model = self.model()
        model.zero_grad()
        prediction = model(x)
        _, grad = pnn.CrossEntropyLoss()(prediction, y)
        model.backward(grad)
        out["clip.norm"] = _host(pnn.clip_grad_norm_(model, 0.1))
        out |= {f"clip.{name}": _host(g) for name, g in model.named_grads().items()}
        return out

    def checkpoint(self) -> Results:
        """A model saved here loads on NumPy, and one saved from NumPy loads here, with the same numbers."""
        out: Results = {}
        with tempfile.TemporaryDirectory() as tmp:
            here, there = Path(tmp) / "here.safetensors", Path(tmp) / "numpy.safetensors"
            pnn.save(self.model(), here)
            loaded = pnn.load(here)  # onto NumPy
            out |= {f"to_numpy.{k}": _host(v) for k, v in loaded.state_dict().items()}
            pnn.save(Workload("numpy").model(), there)
            back = pnn.load(there, xp=self.backend, device=self.device)
            out |= {f"from_numpy.{k}": _host(v) for k, v in back.state_dict().items()}
            out["from_numpy.forward"] = _host(back(self.array(X)))
        return out


STEPS = ("forward_backward", "losses", "training", "checkpoint")


def _gap_checked(call: Callable[[], Any]) -> Any:
    """``call()``, with a namespace module's missing function turned into :class:`NamespaceGap` naming it."""
    try:
        return call()
    except AttributeError as exc:
        module = getattr(exc, "obj", None)
        if not isinstance(module, ModuleType):
            raise  # an attribute missing elsewhere is a bug, not a gap of the namespace
        raise NamespaceGap(f"{module.__name__} has no {exc.name}()") from exc


def run_step(backend: str, step: str, **options: Any) -> Results:
    """Host results of ``step`` on ``backend`` (NamespaceGap where the namespace lacks a function)."""
    result: Results = _gap_checked(lambda: getattr(Workload(backend), step)(**options))
    return result


_REFERENCE: dict[str, Results] = {}


def reference(step: str, **options: Any) -> Results:
    """The NumPy float64 results of ``step`` (computed once per process and options)."""
    key = f"{step}{sorted(options.items())}"
    if key not in _REFERENCE:
        _REFERENCE[key] = run_step("numpy", step, **options)
    return _REFERENCE[key]


def assert_matches_numpy(backend: str, step: str, *, rtol: float = 1e-12, atol: float = 1e-12, **options: Any) -> None:
    """Run ``step`` (with ``options``) on ``backend`` and compare every result with NumPy's (float64)."""
    got, expected = run_step(backend, step, **options), reference(step, **options)
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        np.testing.assert_allclose(got[key], value, rtol=rtol, atol=atol, err_msg=f"{backend}: {step}: {key}")
