"""``Optimizer.step_numbers``: the cached numbers of a compiled step equal ``structure()`` and ``step_scalars()``."""

from __future__ import annotations

from typing import Any

import pytest

import portable_nn as pnn
from portable_nn.errors import ArgumentError


def _expected(opt: pnn.optim.Optimizer, count: int) -> tuple[Any, ...]:
    scalars = opt.step_scalars(count)
    return opt.structure(), tuple(tuple(g) for g in scalars), tuple(v for g in scalars for v in g.values())


def _optimizers() -> list[pnn.optim.Optimizer]:
    def model() -> pnn.Linear:
        return pnn.Linear(2, 1, seed=0)

    class DecayingSGD(pnn.SGD):  # inherits SGD's promise about SGD._scalars, which it no longer uses
        def _scalars(self, hyper: Any, count: int) -> dict[str, float]:
            return {**super()._scalars(hyper, count), "lr": hyper["lr"] / count}

    return [
        pnn.SGD(model(), lr=0.1, momentum=0.9, dampening=0.5, param_groups=[{"params": ["bias"], "lr": 0.2}]),
        pnn.Adam(model(), lr=0.1),
        pnn.Adagrad(model(), lr=0.1, lr_decay=0.5),
        pnn.RMSprop(model(), lr=0.1, momentum=0.5),
        DecayingSGD(model(), lr=0.1, momentum=0.9),
    ]


@pytest.mark.parametrize("index", range(5))
def test_step_numbers_follow_every_count_and_every_change_of_param_groups(index):
    opt = _optimizers()[index]
    for count in (1, 2, 3, 3, 7, 2, 1):
        assert opt.step_numbers(count) == _expected(opt, count)
    opt.param_groups[0]["lr"] = 0.05  # as a user or a scheduler writes it
    assert opt.step_numbers(7) == _expected(opt, 7)
    assert opt.step_numbers(7)[2][0] == pytest.approx(0.05 / 7 if index == 4 else opt.step_scalars(7)[0]["lr"])
    opt.param_groups[-1]["weight_decay"] = 0.25  # a number that was 0: another structure
    assert opt.step_numbers(8) == _expected(opt, 8)


@pytest.mark.parametrize("count", [0, -1, True, 1.0, "2"])
def test_step_numbers_refuse_a_count_as_step_scalars_does(count):
    opt = pnn.SGD(pnn.Linear(2, 1, seed=0), lr=0.1)
    opt.step_numbers(1)  # cached: the refusal does not depend on it
    with pytest.raises(ArgumentError, match="count must be an int >= 1"):
        opt.step_numbers(count)
