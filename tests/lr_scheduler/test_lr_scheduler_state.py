"""Scheduler ``load_state_dict`` checks every value by the constructor's rules; hostile values change nothing.

Each case takes a real state dict, replaces one value by a hostile one and expects a
``SerializationError`` naming the key, with the scheduler and the optimizer unchanged.
"""

from __future__ import annotations

import copy
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import portable_nn as pnn
from portable_nn import lr_scheduler as ours


def _sgd():
    return pnn.SGD(pnn.Linear(2, 1, seed=0), lr=0.1, momentum=0.9)


MAKERS = {
    "StepLR": lambda o: ours.StepLR(o, 3, 0.5),
    "MultiStepLR": lambda o: ours.MultiStepLR(o, [2, 5], 0.5),
    "ExponentialLR": lambda o: ours.ExponentialLR(o, 0.9),
    "CosineAnnealingLR": lambda o: ours.CosineAnnealingLR(o, 10, 0.001),
    "LinearLR": lambda o: ours.LinearLR(o, 0.5, 1.0, 4),
    "OneCycleLR": lambda o: ours.OneCycleLR(o, 1.0, total_steps=20),
    "ReduceLROnPlateau": lambda o: ours.ReduceLROnPlateau(o, patience=1, cooldown=2),
    "SequentialLR": lambda o: ours.SequentialLR(o, [ours.LinearLR(o, 0.5, 1.0, 2), ours.ExponentialLR(o, 0.9)], [2]),
}

_BAD_COMMON = [math.nan, math.inf, -1.5, "x", None, True, [0.1, 0.1], 10**400]

#: key -> hostile values (each alone refused); the common position keys join every epoch schedule.
HOSTILE = {
    "StepLR": {"step_size": [0, -3, 2.5, True, "2", None], "gamma": [math.nan, math.inf, "0.5", None, 10**400]},
    "MultiStepLR": {"milestones": [[5, 2], [-1], [2.5], "25", None, [True]], "gamma": [math.nan, -math.inf]},
    "ExponentialLR": {"gamma": [math.nan, math.inf, [0.9], None]},
    "CosineAnnealingLR": {"T_max": [-3, 0, 1.5, None], "eta_min": [math.nan, "0"]},
    "LinearLR": {"start_factor": [0.0, 1.5, math.nan], "end_factor": [-0.1, 2.0], "total_iters": [0, -1, 1.0]},
    "OneCycleLR": {
        "total_steps": [0, -5, 2.5, 10],  # 10: the phases no longer end at total_steps - 1
        "_phases": [
            [],
            [[5.0, "a", "b", "c", "d"]],
            None,
            [
                [0.0, "initial_lr", "max_lr", "max_momentum", "base_momentum"],
                [19, "max_lr", "min_lr", "base_momentum", "max_momentum"],
            ],
        ],
        "anneal_strategy": ["nonsense", None],
        "cycle_momentum": [1, "yes", None],
        "use_beta1": [True, 0],
        "_group_values": [[], [{}], [{"initial_lr": math.nan, "max_lr": 1.0, "min_lr": 0.0}], None],
    },
    "ReduceLROnPlateau": {
        "mode": ["nonsense", "MIN", None],
        "threshold_mode": ["relative", None],
        "factor": [1.0, -0.1, math.nan],
        "patience": [-1, 1.5, None],
        "cooldown": [-2, "1"],
        "cooldown_counter": [-1, 99],
        "num_bad_epochs": [-1, 0.5],
        "eps": [-1e-8, math.nan],
        "threshold": [math.inf],
        "min_lrs": [[-1.0], [], [0.0, 0.0], "0"],
        "default_min_lr": [-1.0, math.nan],
        "mode_worse": [0.0, -math.inf],
        "best": [math.nan, "1", None, 10**400],
        "last_epoch": [-1, 2.0],
        "_last_lr": [[math.nan], [], None],
    },
    "SequentialLR": {
        "last_epoch": [-2, 1.5, None],
        "_milestones": [[], [2, 3], [-1], ["2"]],
        "_last_lr": [[math.inf], None],
        "_schedulers": [[], None, "x"],
    },
}
for name in ("StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR", "LinearLR", "OneCycleLR"):
    HOSTILE[name].update(
        base_lrs=[[math.nan], [], [-math.inf], None],
        _last_lr=[[math.inf], [0.1, 0.1], None],
        last_epoch=[-2, 1.5, None, "3"],
        _step_count=[-1, 2.0, None],
    )

CASES = [(kind, key, value) for kind, keys in HOSTILE.items() for key, values in keys.items() for value in values]


def _stepped(kind):
    opt = _sgd()
    sched = MAKERS[kind](opt)
    for _ in range(3):
        sched.step(1.0) if kind == "ReduceLROnPlateau" else sched.step()
    return opt, sched


def test_there_are_many_hostile_cases():
    assert len(CASES) >= 120


@pytest.mark.parametrize(("kind", "key", "value"), CASES, ids=[f"{k}-{key}-{i}" for i, (k, key, _) in enumerate(CASES)])
def test_hostile_state_value_is_refused_and_changes_nothing(kind, key, value):
    opt, sched = _stepped(kind)
    state = copy.deepcopy(sched.state_dict())
    assert key in state
    hostile = copy.deepcopy(state)
    hostile[key] = value
    before_sched, before_groups = copy.deepcopy(sched.state_dict()), copy.deepcopy(opt.param_groups)
    with pytest.raises(pnn.SerializationError, match=kind):
        sched.load_state_dict(hostile)
    assert sched.state_dict() == before_sched and opt.param_groups == before_groups
    sched.load_state_dict(state)  # the genuine state still loads
    assert sched.state_dict() == state


@pytest.mark.parametrize("kind", sorted(MAKERS))
def test_genuine_states_round_trip(kind):
    _, sched = _stepped(kind)
    state = copy.deepcopy(sched.state_dict())
    fresh = MAKERS[kind](_sgd())
    fresh.load_state_dict(state)
    assert fresh.state_dict() == state


def test_sequential_inner_hostile_value_is_refused_and_changes_nothing():
    _, sched = _stepped("SequentialLR")
    before = copy.deepcopy(sched.state_dict())
    hostile = copy.deepcopy(before)
    hostile["_schedulers"][1]["gamma"] = math.nan
    with pytest.raises(pnn.SerializationError, match="ExponentialLR state: gamma"):
        sched.load_state_dict(hostile)
    assert sched.state_dict() == before


@settings(max_examples=30, deadline=None)
@given(step_size=st.integers(-(10**6), 0), gamma=st.floats(allow_nan=True, allow_infinity=True))
def test_step_lr_state_and_constructor_share_rules(step_size, gamma):
    """A value the constructor refuses, load_state_dict refuses too (and vice versa)."""
    opt = _sgd()
    sched = ours.StepLR(opt, 3, 0.5)
    state = sched.state_dict()
    for key, value in (("step_size", step_size), ("gamma", gamma)):
        try:
            ours.StepLR(_sgd(), **{"step_size": 3, "gamma": 0.5, key: value})
        except pnn.PortableNNError:
            with pytest.raises(pnn.SerializationError):
                sched.load_state_dict({**state, key: value})
        else:
            sched.load_state_dict({**state, key: value})
            sched.load_state_dict(state)


@pytest.mark.parametrize("metric", [10**400, -(10**400)])
def test_plateau_step_with_a_metric_too_large_for_a_float(metric):
    opt = _sgd()
    sched = ours.ReduceLROnPlateau(opt)
    before = copy.deepcopy(sched.state_dict())
    with pytest.raises(pnn.ArgumentError, match="metrics"):
        sched.step(metric)
    assert sched.state_dict() == before


def test_nested_sequential_round_trip():
    def make(o):
        inner = ours.SequentialLR(o, [ours.LinearLR(o, 0.5, 1.0, 2), ours.StepLR(o, 2, 0.5)], [2])
        return ours.SequentialLR(o, [inner, ours.ExponentialLR(o, 0.9)], [5])

    first_opt, second_opt = _sgd(), _sgd()
    first = make(first_opt)
    for _ in range(3):
        first.step()
    second = make(second_opt)
    second.load_state_dict(copy.deepcopy(first.state_dict()))
    second_opt.load_state_dict(first_opt.state_dict())
    for _ in range(4):
        first.step()
        second.step()
        assert second.get_last_lr() == first.get_last_lr()


@pytest.mark.parametrize(("mode", "metric"), [("min", -math.inf), ("max", math.inf), ("min", math.inf)])
def test_plateau_state_after_an_infinite_metric_round_trips(mode, metric):
    """What state_dict writes, load_state_dict reads: an infinite metric step() accepted is a valid best."""
    opt = _sgd()
    sched = ours.ReduceLROnPlateau(opt, mode=mode)
    sched.step(metric)
    fresh = ours.ReduceLROnPlateau(_sgd(), mode=mode)
    fresh.load_state_dict(copy.deepcopy(sched.state_dict()))
    assert fresh.state_dict() == sched.state_dict()
