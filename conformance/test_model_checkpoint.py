"""Whole-model checkpoints: ``pnn.save(model)`` / ``pnn.load`` rebuild any registered model on every backend pair,
and ``pnn.save(..., optimizer=)`` / ``pnn.load_optimizer`` resume training exactly.
"""

from __future__ import annotations

import json

import pytest

import portable_nn as pnn
from portable_nn import _backend
from portable_nn.testing import random_array, to_numpy

from .io_helpers import has_dtype, host_bytes, parametrize_targets, split_file, target_namespace_device

pytest_generate_tests = parametrize_targets


@pnn.register("tests.Scale")
class Scale(pnn.Module):
    """A user layer: ``y = x * scale + shift`` (shift optional), registered under a chosen name."""

    def __init__(self, features, shift=True, *, xp="numpy", device=None, dtype="float32", seed=None):
        super().__init__(xp=xp, device=device, dtype=dtype, seed=seed)
        self.features, self.shift = features, shift
        self.add_parameter("scale", (features,), init="normal")
        if shift:
            self.add_parameter("offset", (features,), init="normal")

    def functional_forward(self, params, x, call):
        if call.validate:
            self.check_input(x, last_axis=self.features)
        return x * params["scale"] + (params["offset"] if self.shift else 0), x

    def functional_backward(self, params, x, grad_output, need_input_grad, call):
        flat = self.xp.reshape(grad_output, (-1, self.features))
        grads = {"scale": self.xp.sum(self.xp.reshape(grad_output * x, (-1, self.features)), axis=0)}
        if self.shift:
            grads["offset"] = self.xp.sum(flat, axis=0)
        return grad_output * params["scale"], grads

    def get_config(self):
        return {"features": self.features, "shift": self.shift}


def nested_model(xp, device, dtype):
    inner = pnn.Sequential(pnn.Linear(5, 3, xp=xp, device=device, dtype=dtype, seed=2), pnn.Sigmoid())
    return pnn.Sequential(
        pnn.Linear(4, 5, xp=xp, device=device, dtype=dtype, seed=1),
        pnn.Tanh(),
        Scale(5, xp=xp, device=device, dtype=dtype, seed=3),
        pnn.ReLU(),
        inner,
        pnn.Linear(3, 2, bias=False, xp=xp, device=device, dtype=dtype, seed=4),
    )


def train(model, optimizer, x, steps):
    for _ in range(steps):
        optimizer.zero_grad()
        model.backward(model(x))  # dL/dy = y for L = |y|^2 / 2
        optimizer.step()


def test_nested_sequential_round_trip(xp, device, dtype, target, tmp_path):
    """A nested Sequential with a user layer saved on A loads on B as the same architecture, same bytes."""
    model = nested_model(xp, device, dtype)
    path = tmp_path / "model.safetensors"
    pnn.save(model, path, metadata={"run": "7", "note": "ünïcode"})
    target_xp, target_device = target_namespace_device(target)
    name = _backend.dtype_name(xp, dtype)
    cast = None if has_dtype(target_xp, target_device, name) else "float32"
    loaded = pnn.load(path, xp=target_xp, device=target.device, dtype=cast)
    assert repr(loaded).count("Linear(") == 3
    assert loaded.get_config() == model.get_config()
    assert isinstance(loaded[2], Scale) and isinstance(loaded[4], pnn.Sequential)
    assert isinstance(loaded[4][1], pnn.Sigmoid) and loaded[5].bias is None
    assert (loaded.xp, loaded.device) == (target_xp, target_device)
    assert list(loaded.state_dict()) == list(model.state_dict())
    for key, value in model.state_dict().items():
        expected = _backend.from_host(to_numpy(value), target_xp, target_device, loaded.dtype)
        assert host_bytes(loaded.state_dict()[key]) == host_bytes(expected), key
    assert pnn.load_metadata(path)["run"] == "7" and pnn.load_metadata(path)["note"] == "ünïcode"


def test_every_builtin_and_user_layer_alone(xp, device, dtype, tmp_path):
    for model in (
        pnn.Linear(3, 2, xp=xp, device=device, dtype=dtype, seed=0),
        Scale(4, shift=False, xp=xp, device=device, dtype=dtype, seed=0),
        pnn.Sequential(pnn.ReLU(), pnn.Tanh()),
    ):
        path = tmp_path / "m.safetensors"
        pnn.save(model, path)
        loaded = pnn.load(path, xp=xp, device=device)
        assert type(loaded) is type(model) and loaded.get_config() == model.get_config()
        for key, value in model.state_dict().items():
            assert host_bytes(loaded.state_dict()[key]) == host_bytes(value), key
            assert _backend.device_of(loaded.state_dict()[key]) == device


OPTIMIZERS = {
    "sgd_momentum": lambda m: pnn.SGD(m, lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01),
    "adam": lambda m: pnn.Adam(m, lr=0.01, betas=(0.8, 0.99), weight_decay=0.1),
    "adamw": lambda m: pnn.AdamW(m, lr=0.01),
}


@pytest.mark.parametrize("make", ["sgd_momentum", "adam"])
def test_training_resumes_exactly_after_a_reload(xp, device, target, tmp_path, make):
    """k steps, save model + optimizer, load both on B, n more steps == k + n uninterrupted steps.

    Bitwise when B is A (one backend computes both); within float32's tolerance across backends,
    whose matmul kernels differ. The reloaded parameters and buffers are bitwise the saved ones.
    """
    _resume(xp, device, "float32", target_namespace_device(target), tmp_path, OPTIMIZERS[make])


@pytest.mark.parametrize("make", ["sgd_momentum", "adam", "adamw"])
def test_training_resumes_bitwise_on_the_same_backend(xp, device, dtype, tmp_path, make):
    _resume(xp, device, dtype, (xp, device), tmp_path, OPTIMIZERS[make])


def _resume(xp, device, dtype, where, tmp_path, make):
    target_xp, target_device = where
    x, x64 = random_array(xp, (6, 4), device=device, dtype=dtype, seed=5)
    reference = nested_model(xp, device, dtype)
    opt_reference = make(reference)
    train(reference, opt_reference, x, 5)

    model = nested_model(xp, device, dtype)
    opt = make(model)
    train(model, opt, x, 3)
    path = tmp_path / "run.safetensors"
    pnn.save(model, path, optimizer=opt)
    loaded = pnn.load(path, xp=target_xp, device=target_device)
    opt_loaded = pnn.load_optimizer(path, loaded)
    assert type(opt_loaded) is type(opt) and opt_loaded.step_count == 3
    assert opt_loaded.hyperparameters == opt.hyperparameters
    saved, restored = opt.state_dict()["state"], opt_loaded.state_dict()["state"]
    assert saved.keys() == restored.keys()
    for param, buffers in saved.items():
        for buffer, value in buffers.items():
            assert host_bytes(restored[param][buffer]) == host_bytes(value), (param, buffer)
            assert _backend.device_of(restored[param][buffer]) == target_device
    train(loaded, opt_loaded, _backend.from_host(x64, target_xp, target_device, loaded.dtype), 2)
    for key, value in reference.state_dict().items():
        got = loaded.state_dict()[key]
        if target_xp is xp and target_device == device:
            assert host_bytes(got) == host_bytes(value), key
        else:
            pnn.testing.assert_close(got, to_numpy(value).astype("float64"))


def test_load_optimizer_refuses_what_does_not_fit(xp, device, tmp_path):
    model = nested_model(xp, device, "float32")
    opt = pnn.Adam(model)
    x, _ = random_array(xp, (2, 4), device=device, dtype=model.dtype, seed=0)
    train(model, opt, x, 1)
    path = tmp_path / "run.safetensors"
    pnn.save(model, path, optimizer=opt)
    with pytest.raises(pnn.DTypeError, match="pass cast=True"):
        pnn.load_optimizer(path, pnn.load(path, xp=xp, device=device, dtype="float64"))
    cast = pnn.load_optimizer(path, pnn.load(path, xp=xp, device=device, dtype="float64"), cast=True)
    assert cast.step_count == 1
    with pytest.raises(pnn.SerializationError, match="does not load into this model"):
        pnn.load_optimizer(path, pnn.Linear(4, 5, xp=xp, device=device))
    pnn.save(model, tmp_path / "plain.safetensors")
    with pytest.raises(pnn.SerializationError, match="holds no optimizer state"):
        pnn.load_optimizer(tmp_path / "plain.safetensors", model)
    with pytest.raises(pnn.ArgumentError, match="optimizer of the model"):
        pnn.save(pnn.Linear(2, 2), path, optimizer=opt)


def test_unknown_class_is_named_and_nothing_is_imported(xp, device, tmp_path):
    path = tmp_path / "model.safetensors"
    pnn.save(pnn.Sequential(pnn.Linear(2, 2, seed=0), pnn.ReLU()), path)
    header, data = split_file(path.read_bytes())
    config = json.loads(header["__metadata__"]["portable_nn.config"])
    config["layers"][1]["class"] = "os.system"
    header["__metadata__"]["portable_nn.config"] = json.dumps(config)
    text = json.dumps(header).encode()
    path.write_bytes(len(text).to_bytes(8, "little") + text + data)
    with pytest.raises(pnn.SerializationError, match=r"unknown module class 'os.system'.*not registered"):
        pnn.load(path, xp=xp, device=device)
