"""Layer shapes of the Linear benchmark (``"32x64->64"``) and the host numbers every variant starts from."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

OPS: tuple[str, ...] = ("forward", "backward", "step", "fwd+bwd", "train")


@dataclass(frozen=True)
class Shape:
    """An input (*lead, in_features) mapped to (*lead, out_features); parsed from ``"32x64->64"`` or ``"32x64:64"``."""

    lead: tuple[int, ...]
    in_features: int
    out_features: int

    @classmethod
    def parse(cls, text: str) -> Shape:
        try:
            left, out = text.replace(" ", "").replace("->", ":").split(":")
            dims = tuple(int(d) for d in left.lower().split("x"))
            shape = cls(dims[:-1], dims[-1], int(out))
        except ValueError:
            expected = "expected 'BATCHxIN->OUT' or 'AxBxIN->OUT' (or with ':' for '->'), e.g. '32x64->64'"
            raise ValueError(f"bad shape {text!r}: {expected}") from None
        if not shape.lead or min(*shape.lead, shape.in_features, shape.out_features) <= 0:
            raise ValueError(f"bad shape {text!r}: every size must be >= 1 and there must be a batch axis")
        return shape

    @property
    def rows(self) -> int:
        return math.prod(self.lead)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (*self.lead, self.in_features)

    @property
    def output_shape(self) -> tuple[int, ...]:
        return (*self.lead, self.out_features)

    @property
    def label(self) -> str:
        return f"B{'x'.join(map(str, self.lead))} {self.in_features}->{self.out_features}"

    def flops(self, op: str) -> float:
        """Floating-point operations of ``op`` (a matmul of m x k by k x n counts 2mkn; adds and sums 1 each)."""
        mm = 2.0 * self.rows * self.in_features * self.out_features
        bias = float(self.rows * self.out_features)
        params = float(self.out_features * (self.in_features + 1))
        return {
            "forward": mm + bias,
            "backward": 2 * mm + bias,
            "step": 2 * params,
            "fwd+bwd": 3 * mm + 2 * bias,
            "train": 3 * mm + 2 * bias + 2 * params,
        }[op]


@dataclass
class Data:
    """Host float64 numbers every variant of a case starts from."""

    x: np.ndarray
    g: np.ndarray
    weight: np.ndarray
    bias: np.ndarray

    @classmethod
    def make(cls, shape: Shape, seed: int = 0) -> Data:
        rng = np.random.default_rng(seed)
        bound = 1.0 / math.sqrt(shape.in_features)
        return cls(
            rng.standard_normal(shape.input_shape),
            rng.standard_normal(shape.output_shape),
            rng.uniform(-bound, bound, (shape.out_features, shape.in_features)),
            rng.uniform(-bound, bound, (shape.out_features,)),
        )
