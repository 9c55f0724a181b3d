"""``pnn.register`` / the registry, ``Module.get_config`` / ``from_config`` and ``init.placeholder``."""

from __future__ import annotations

import numpy as np
import pytest

import portable_nn as pnn
from portable_nn.io import registry


def test_builtins_are_registered_under_their_class_names():
    for cls in (pnn.Linear, pnn.ReLU, pnn.Tanh, pnn.Sigmoid, pnn.Sequential):
        assert pnn.registered_name(cls) == cls.__name__ and registry.lookup(cls.__name__) is cls
    for cls in (pnn.SGD, pnn.Adam, pnn.AdamW):
        assert registry.registered_optimizer_name(cls) == cls.__name__
        assert registry.lookup_optimizer(cls.__name__) is cls


def test_register_bare_and_named():
    @pnn.register
    class Bare(pnn.Module):
        pass

    @pnn.register("tests.named")
    class Named(pnn.Module):
        pass

    assert pnn.registered_name(Bare) == "Bare" and registry.lookup("Bare") is Bare
    assert pnn.registered_name(Named) == "tests.named" and registry.lookup("tests.named") is Named
    assert "tests.named" in registry.registered_names()


def test_a_taken_name_is_refused_and_a_redefinition_replaces():
    def define():
        @pnn.register("tests.redefined")
        class Layer(pnn.Module):
            pass

        return Layer

    first, second = define(), define()  # same module and qualified name: a re-run cell
    assert first is not second and registry.lookup("tests.redefined") is second

    class Other(pnn.Module):
        pass

    with pytest.raises(pnn.ArgumentError, match="already registered"):
        pnn.register("tests.redefined")(Other)
    with pytest.raises(pnn.ArgumentError, match="already registered"):
        pnn.register("Linear")(Other)


def test_only_modules_and_optimizers_register():
    with pytest.raises(pnn.ArgumentTypeError, match=r"subclass of portable_nn\.Module"):
        pnn.register(int)
    with pytest.raises(pnn.ArgumentTypeError, match=r"subclass of portable_nn\.Optimizer"):
        pnn.register_optimizer(pnn.Linear)
    with pytest.raises(pnn.ArgumentError, match="non-empty printable"):
        pnn.register("")(pnn.Linear)


def test_unknown_names_are_serialization_errors_naming_them():
    with pytest.raises(pnn.SerializationError, match="unknown module class 'NoSuch'"):
        registry.lookup("NoSuch")
    with pytest.raises(pnn.SerializationError, match="unknown optimizer class 'Lion'"):
        registry.lookup_optimizer("Lion")


def test_get_config_of_builtins_and_from_config():
    model = pnn.Sequential(
        pnn.Linear(3, 4, seed=0), pnn.ReLU(), pnn.Sequential(pnn.Linear(4, 2, bias=False), pnn.Tanh())
    )
    config = model.get_config()
    assert config == {
        "layers": [
            {"class": "Linear", "config": {"in_features": 3, "out_features": 4, "bias": True}},
            {"class": "ReLU", "config": {}},
            {
                "class": "Sequential",
                "config": {
                    "layers": [
                        {"class": "Linear", "config": {"in_features": 4, "out_features": 2, "bias": False}},
                        {"class": "Tanh", "config": {}},
                    ]
                },
            },
        ]
    }
    rebuilt = pnn.Sequential.from_config(config, xp="numpy", dtype="float64")
    assert rebuilt.get_config() == config and rebuilt.dtype == np.float64
    with pytest.raises(pnn.ArgumentError, match="exactly the keys"):
        pnn.Linear.from_config({"in_features": 3})
    with pytest.raises(pnn.ArgumentError, match="takes no config"):
        pnn.ReLU.from_config({"inplace": True})
    with pytest.raises(pnn.ArgumentError, match="Sequential config"):
        pnn.Sequential.from_config({"layers": []})


def test_user_layer_without_get_config_is_told_to_write_one(tmp_path):
    @pnn.register("tests.needs_config")
    class Scale(pnn.Module):
        def __init__(self, features, *, xp="numpy", device=None, dtype="float32", seed=None):
            super().__init__(xp=xp, device=device, dtype=dtype, seed=seed)
            self.add_parameter("scale", (features,), init="ones")

    with pytest.raises(pnn.ArgumentError, match=r"takes constructor arguments \['features'\]: override get_config"):
        pnn.save(Scale(3), tmp_path / "s.safetensors")
    with pytest.raises(pnn.ArgumentError, match="override get_config"):
        pnn.Sequential(Scale(3)).get_config()
    assert list(tmp_path.iterdir()) == []


def test_unregistered_model_is_saved_as_state_only(tmp_path):
    class Plain(pnn.Linear):
        pass

    path = tmp_path / "p.safetensors"
    pnn.save(Plain(2, 3, seed=0), path)
    assert pnn.load_metadata(path)["portable_nn.class"] == "Plain"
    with pytest.raises(pnn.SerializationError, match=r"Plain saved without an architecture config.*load_state"):
        pnn.load(path)
    assert sorted(pnn.load_state(path)) == ["bias", "weight"]


def test_sequential_with_user_metadata_saves_for_the_cli(tmp_path):
    model = pnn.Sequential(pnn.Linear(2, 8, seed=0), pnn.ReLU(), pnn.Linear(8, 3, seed=1))
    pnn.save(model, tmp_path / "m.safetensors", metadata={"backend": "numpy", "epochs": "3", "loss": "0.25"})
    meta = pnn.load_metadata(tmp_path / "m.safetensors")
    assert (meta["epochs"], meta["portable_nn.class"]) == ("3", "Sequential")


def test_placeholder_draws_zeros_within_a_budget():
    with pnn.init.placeholder(15, "float32"):
        layer = pnn.Linear(4, 3, seed=0)
        with pytest.raises(pnn.ShapeError, match=r"\(3, 4\) \(12 elements\) exceeds the 0 of 15"):
            pnn.Linear(4, 3)
    assert not np.any(layer.weight) and not np.any(layer.bias)
    assert np.any(pnn.Linear(4, 3, seed=0).weight)  # outside the block: the seeded draw again
