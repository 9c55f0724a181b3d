"""Learning-rate schedules against torch.optim.lr_scheduler at run time, over randomized settings (hypothesis).

Each case builds the same schedule on a torch optimizer and on a portable_nn one and compares
the rates after every step (bit for bit: the same float formulas), momentum/beta1 for
OneCycleLR, and state_dict round trips in the middle of a run.
"""

from __future__ import annotations

import copy
import math
import warnings

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import portable_nn as pnn
from portable_nn import lr_scheduler as ours

torch = pytest.importorskip("torch")
theirs = torch.optim.lr_scheduler

EXAMPLES = settings(max_examples=15, deadline=None)
GAMMAS = st.floats(0.05, 0.99)


def _optimizers(kind: str, lr: float):
    param = torch.nn.Parameter(torch.zeros(2))
    model = pnn.Linear(2, 1, seed=0)
    if kind == "adam":
        return torch.optim.Adam([param], lr=lr), pnn.Adam(model, lr=lr)
    return torch.optim.SGD([param], lr=lr, momentum=0.9), pnn.SGD(model, lr=lr, momentum=0.9)


def _momentum(group):
    return group["betas"][0] if "betas" in group else group["momentum"]


def _compare(make, steps: int, kind: str = "sgd", lr: float = 0.1, metrics=None, check_momentum=False):
    torch_opt, our_opt = _optimizers(kind, lr)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch warns when the scheduler steps before the optimizer
        torch_sched = make(theirs, torch_opt)
        our_sched = make(ours, our_opt)
        assert our_sched.get_last_lr() == torch_sched.get_last_lr()
        for i in range(steps):
            if metrics is None:
                torch_sched.step()
                our_sched.step()
            else:
                torch_sched.step(metrics[i])
                our_sched.step(metrics[i])
            assert our_sched.get_last_lr() == torch_sched.get_last_lr(), f"step {i + 1}"
            assert our_opt.lr == torch_opt.param_groups[0]["lr"]
            if check_momentum:
                assert _momentum(our_opt.param_groups[0]) == _momentum(torch_opt.param_groups[0]), f"step {i + 1}"
    return our_sched, our_opt


def _round_trip(make, steps: int, split: int, kind: str = "sgd", lr: float = 0.1):
    """A schedule saved after ``split`` steps and loaded into a fresh one continues identically."""
    _, first_opt = _optimizers(kind, lr)
    first = make(ours, first_opt)
    for _ in range(split):
        first.step()
    state = copy.deepcopy(first.state_dict())
    opt_state = first_opt.state_dict()
    _, second_opt = _optimizers(kind, lr)
    second = make(ours, second_opt)
    second.load_state_dict(state)
    second_opt.load_state_dict(opt_state)
    assert second.get_last_lr() == first.get_last_lr()
    for _ in range(steps - split):
        first.step()
        second.step()
        assert second.get_last_lr() == first.get_last_lr()


SIMPLE = st.one_of(
    st.builds(lambda s, g: lambda m, o: m.StepLR(o, s, g), st.integers(1, 6), GAMMAS),
    st.builds(lambda ms, g: lambda m, o: m.MultiStepLR(o, ms, g), st.lists(st.integers(0, 20), max_size=4), GAMMAS),
    st.builds(lambda g: lambda m, o: m.ExponentialLR(o, g), GAMMAS),
    st.builds(lambda t, e: lambda m, o: m.CosineAnnealingLR(o, t, e), st.integers(1, 12), st.sampled_from([0.0, 1e-3])),
    st.builds(
        lambda s, e, t: lambda m, o: m.LinearLR(o, s, e, t),
        st.floats(0.05, 1.0),
        st.floats(0.0, 1.0),
        st.integers(1, 10),
    ),
    st.builds(lambda p: lambda m, o: m.LambdaLR(o, lambda epoch: 1.0 / (1 + p * epoch)), st.floats(0.0, 2.0)),
)


@EXAMPLES
@given(make=SIMPLE, steps=st.integers(1, 30), lr=st.floats(1e-4, 1.0), kind=st.sampled_from(["sgd", "adam"]))
def test_simple_schedules_match_torch(make, steps, lr, kind):
    _compare(make, steps, kind, lr)
    _round_trip(make, steps, steps // 2, kind, lr)


@EXAMPLES
@given(
    first=SIMPLE,
    second=SIMPLE,
    third=SIMPLE,
    milestones=st.lists(st.integers(0, 12), min_size=1, max_size=2, unique=True).map(sorted),
    steps=st.integers(1, 30),
)
def test_sequential_matches_torch(first, second, third, milestones, steps):
    parts = [first, second, third][: len(milestones) + 1]

    def make(m, o):
        return m.SequentialLR(o, [part(m, o) for part in parts], milestones)

    _compare(make, steps)
    _round_trip(make, steps, steps // 2)


@EXAMPLES
@given(
    total=st.integers(2, 40),
    pct=st.floats(0.05, 0.95),
    strategy=st.sampled_from(["cos", "linear"]),
    three_phase=st.booleans(),
    kind=st.sampled_from(["sgd", "adam"]),
    div=st.floats(2.0, 50.0),
    final_div=st.floats(10.0, 1e4),
    max_lr=st.floats(1e-3, 2.0),
)
def test_one_cycle_matches_torch(total, pct, strategy, three_phase, kind, div, final_div, max_lr):
    def make(m, o):
        return m.OneCycleLR(
            o,
            max_lr,
            total_steps=total,
            pct_start=pct,
            anneal_strategy=strategy,
            three_phase=three_phase,
            div_factor=div,
            final_div_factor=final_div,
        )

    steps = total - 1  # the last scheduled rate; one more step extrapolates (a negative rate when linear)
    assume(not three_phase or 2 * pct * total - 2 < total - 1)  # else torch's phases overlap (division by zero)
    try:
        make(ours, _optimizers(kind, 0.1)[1])
    except pnn.ArgumentError as exc:  # an empty phase (pct * total == 1): torch divides by zero there
        assert "no length" in str(exc)
        _assert_torch_divides_by_zero(make, total, kind)
        return
    _compare(make, steps, kind, check_momentum=True)
    _round_trip(make, steps, steps // 2, kind)


def _assert_torch_divides_by_zero(make, total, kind):
    with pytest.raises(ZeroDivisionError), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sched = make(theirs, _optimizers(kind, 0.1)[0])
        for _ in range(total):
            sched.step()


@pytest.mark.parametrize(
    ("total", "pct", "three_phase"),
    [(10, 0.1, False), (2, 0.5, False), (10, 1.0, False), (7, 1.0, False), (10, 0.1, True), (4, 0.25, True)],
)
def test_one_cycle_empty_phases_are_typed_errors(total, pct, three_phase):
    """Where torch's OneCycleLR divides by zero (at construction or at its last step), ours refuses up front."""

    def make(m, o):
        return m.OneCycleLR(o, 1.0, total_steps=total, pct_start=pct, three_phase=three_phase)

    opt = _optimizers("sgd", 0.1)[1]
    before = copy.deepcopy(opt.param_groups)
    with pytest.raises(pnn.ArgumentError, match="no length"):
        make(ours, opt)
    assert opt.param_groups == before  # nothing written into the groups
    _assert_torch_divides_by_zero(make, total, "sgd")


@EXAMPLES
@given(
    mode=st.sampled_from(["min", "max"]),
    factor=st.floats(0.1, 0.9),
    patience=st.integers(0, 3),
    threshold=st.floats(0.0, 0.1),
    threshold_mode=st.sampled_from(["rel", "abs"]),
    cooldown=st.integers(0, 2),
    min_lr=st.sampled_from([0.0, 1e-3]),
    metrics=st.lists(st.one_of(st.floats(-2, 2), st.just(math.nan), st.just(1.0)), min_size=1, max_size=30),
)
def test_reduce_on_plateau_matches_torch(mode, factor, patience, threshold, threshold_mode, cooldown, min_lr, metrics):
    def make(m, o):
        return m.ReduceLROnPlateau(
            o,
            mode=mode,
            factor=factor,
            patience=patience,
            threshold=threshold,
            threshold_mode=threshold_mode,
            cooldown=cooldown,
            min_lr=min_lr,
        )

    sched, _ = _compare(make, len(metrics), metrics=metrics)
    fresh = make(ours, _optimizers("sgd", 0.1)[1])
    fresh.load_state_dict(sched.state_dict())
    assert fresh.state_dict() == sched.state_dict() or math.isnan(sched.best)


def test_errors_are_typed_and_change_nothing():
    model = pnn.Linear(2, 1, seed=0)
    opt = pnn.SGD(model, lr=0.1)
    with pytest.raises(pnn.ArgumentTypeError, match="param_groups"):
        ours.StepLR(object(), 2)
    with pytest.raises(pnn.ArgumentError, match="step_size"):
        ours.StepLR(opt, 0)
    with pytest.raises(pnn.ArgumentTypeError, match="step_size"):
        ours.StepLR(opt, 2.0)
    with pytest.raises(pnn.ArgumentError, match="start_factor"):
        ours.LinearLR(opt, start_factor=0.0)
    with pytest.raises(pnn.ArgumentError, match="factor"):
        ours.ReduceLROnPlateau(opt, factor=1.0)
    with pytest.raises(pnn.ArgumentError, match="cycle_momentum"):
        ours.OneCycleLR(_NoMomentum(), 1.0, total_steps=5)
    with pytest.raises(pnn.ArgumentError, match="one milestone fewer"):
        ours.SequentialLR(opt, [ours.StepLR(opt, 2)], [3])
    with pytest.raises(pnn.ArgumentTypeError, match="ReduceLROnPlateau"):
        ours.SequentialLR(opt, [ours.ReduceLROnPlateau(opt), ours.StepLR(opt, 2)], [3])
    sched = ours.OneCycleLR(_NoMomentum(), 1.0, total_steps=2, cycle_momentum=False)
    sched.step()
    sched.step()
    before = (sched.last_epoch, sched.get_last_lr(), sched._step_count)
    with pytest.raises(pnn.CallOrderError, match="past its total_steps=2"):
        sched.step()
    assert (sched.last_epoch, sched.get_last_lr(), sched._step_count) == before
    with pytest.raises(pnn.SerializationError):
        ours.StepLR(opt, 2).load_state_dict({"step_size": 3})
    with pytest.raises(pnn.ArgumentTypeError, match="metrics"):
        ours.ReduceLROnPlateau(opt).step("low")


class _NoMomentum:
    """The minimal optimizer contract, without momentum or betas."""

    def __init__(self):
        self.param_groups = [{"lr": 0.1}]


def test_sequential_load_state_dict_is_all_or_nothing():
    model = pnn.Linear(2, 1, seed=0)
    opt = pnn.SGD(model, lr=0.1)
    sched = ours.SequentialLR(opt, [ours.StepLR(opt, 2, gamma=0.5), ours.ExponentialLR(opt, 0.9)], [3])
    for _ in range(4):
        sched.step()
    state = sched.state_dict()
    fresh_opt = pnn.SGD(pnn.Linear(2, 1, seed=0), lr=0.1)
    fresh = ours.SequentialLR(
        fresh_opt, [ours.StepLR(fresh_opt, 2, gamma=0.5), ours.ExponentialLR(fresh_opt, 0.9)], [3]
    )
    before = copy.deepcopy(fresh.state_dict())
    broken = copy.deepcopy(state)
    del broken["_schedulers"][1]["gamma"]  # the second inner state is bad: the first must not be loaded either
    with pytest.raises(pnn.SerializationError, match="ExponentialLR state"):
        fresh.load_state_dict(broken)
    assert fresh.state_dict() == before
    fresh.load_state_dict(state)
    assert fresh.state_dict() == state


def test_drives_a_training_loop():
    """A schedule changes the rate a portable_nn optimizer steps with."""
    model = pnn.Linear(2, 1, seed=0)
    opt = pnn.SGD(model, lr=1.0)
    sched = ours.StepLR(opt, step_size=1, gamma=0.5)
    sched.step()
    assert opt.lr == 0.5 and opt.param_groups[0]["lr"] == 0.5
    assert opt.param_groups[0]["initial_lr"] == 1.0 and "initial_lr" not in opt.hyperparameters
