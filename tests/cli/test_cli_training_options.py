"""``--optimizer rmsprop|adagrad``, ``--schedule``, ``--clip-grad-norm``: the run uses what was asked for."""

from __future__ import annotations

import json

import pytest

from portable_nn.cli import model as cli_model
from portable_nn.cli import train as cli_train

from .cli_support import TINY, run_cli


@pytest.mark.parametrize("name", ["rmsprop", "adagrad"])
def test_new_optimizers_run_and_agree_across_backends(capsys, tmp_path, name):
    figures = tmp_path / "f.json"
    code, out, err = run_cli(capsys, "--backend", "numpy,torch", *TINY, "--optimizer", name, "--json", str(figures))
    assert code == 0, out + err
    config = json.loads(figures.read_text())["config"]
    assert config["optimizer"] == name and config["lr"] == cli_model.DEFAULT_LR[name]
    assert f"{cli_model.OPTIMIZERS[name].__name__}(lr=" in out
    assert "every run within tolerance of the numpy run" in out


@pytest.mark.parametrize("schedule", ["cosine", "onecycle", "step"])
def test_schedule_and_clipping_are_applied_every_step(capsys, monkeypatch, schedule):
    torch = pytest.importorskip("torch")
    seen = {"max_grad_norm": None, "lrs": []}
    make_schedule = cli_model.make_schedule

    def recording_schedule(name, optimizer, steps, lr):
        sched = make_schedule(name, optimizer, steps, lr)
        original = sched.step

        def step(*args):
            original(*args)
            seen["lrs"].append(sched.get_last_lr()[0])

        sched.step = step
        seen["steps"], seen["lr"] = steps, lr
        return sched

    real_train_step = cli_train.train_step

    def recording_train_step(model, loss_fn, optimizer, **options):
        seen["max_grad_norm"] = options.get("max_grad_norm")
        return real_train_step(model, loss_fn, optimizer, **options)

    monkeypatch.setattr(cli_model, "make_schedule", recording_schedule)
    monkeypatch.setattr(cli_train, "train_step", recording_train_step)
    code, out, err = run_cli(capsys, "--backend", "numpy", *TINY, "--schedule", schedule, "--clip-grad-norm", "0.5")
    assert code == 0, out + err
    steps = seen["steps"]
    assert seen["max_grad_norm"] == 0.5  # train_step clips before every update (conformance/test_train_step_state.py)
    # the rates the run used equal torch's scheduler over the same number of steps
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=seen["lr"], momentum=0.9)
    ref = {
        "cosine": lambda: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps),
        "onecycle": lambda: torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=seen["lr"], total_steps=steps),
        "step": lambda: torch.optim.lr_scheduler.StepLR(opt, step_size=max(1, steps // 3), gamma=0.1),
    }[schedule]()
    expected = []
    for _ in range(steps - 1):
        opt.step()
        ref.step()
        expected.append(ref.get_last_lr()[0])
    assert seen["lrs"] == expected
