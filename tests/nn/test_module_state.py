"""Module.state_dict / load_state_dict / to stay generic: a container overriding the parameter protocol gets them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest

import portable_nn as pnn
from portable_nn.testing import to_numpy


class _Pair(pnn.Module):
    """A minimal container of two Linears with prefixed names ("0.weight"), delegating like a Sequential would."""

    def __init__(self, **placement: Any) -> None:
        self.layers = [pnn.Linear(3, 2, seed=0, **placement), pnn.Linear(2, 1, bias=False, seed=1, **placement)]
        self.xp, self.device, self.dtype = self.layers[0].xp, self.layers[0].device, self.layers[0].dtype

    def named_parameters(self) -> dict[str, Any]:
        return {f"{i}.{n}": p for i, layer in enumerate(self.layers) for n, p in layer.named_parameters().items()}

    def set_parameters(self, values: Mapping[str, Any]) -> None:
        for name in values:
            if name not in self.named_parameters():
                raise KeyError(name)
        for i, layer in enumerate(self.layers):
            layer.set_parameters({k.split(".", 1)[1]: v for k, v in values.items() if k.startswith(f"{i}.")})

    def to(self, xp: Any = None, device: Any = None, dtype: Any = None) -> _Pair:
        for layer in self.layers:
            layer.to(xp, device, dtype)
        self.xp, self.device, self.dtype = self.layers[0].xp, self.layers[0].device, self.layers[0].dtype
        return self


def test_container_state_dict_uses_prefixed_names():
    assert list(_Pair().state_dict()) == ["0.weight", "0.bias", "1.weight"]


def test_container_load_state_dict_from_another_backend():
    torch = pytest.importorskip("torch", reason="needs a second backend")
    source = _Pair(xp="torch")
    target = _Pair(xp="numpy")
    for layer in source.layers:
        layer.set_parameters({n: p + 1 for n, p in layer.named_parameters().items()})
    target.load_state_dict(source.state_dict())
    for name, value in target.state_dict().items():
        assert isinstance(value, np.ndarray)
        np.testing.assert_array_equal(value, to_numpy(source.state_dict()[name]))
    bad = dict(source.state_dict()) | {"1.weight": torch.zeros(3, 3)}
    before = {n: v.copy() for n, v in target.state_dict().items()}
    with pytest.raises(pnn.ShapeError, match=r"1\.weight"):
        target.load_state_dict(bad)
    for name, value in target.state_dict().items():
        np.testing.assert_array_equal(value, before[name])


def test_container_save_and_load_state(tmp_path):
    pair = _Pair()
    pair.layers[1].set_parameters({"weight": pair.layers[1].weight * 3})  # differs from a fresh _Pair()
    pnn.save(pair, tmp_path / "pair.safetensors")
    assert pnn.load_metadata(tmp_path / "pair.safetensors")["portable_nn.class"] == "_Pair"
    with pytest.raises(pnn.SerializationError, match="holds a _Pair"):
        pnn.load(tmp_path / "pair.safetensors")
    other = _Pair()
    other.load_state_dict(pnn.load_state(tmp_path / "pair.safetensors"))
    assert other.state_dict().keys() == pair.state_dict().keys()
    for name, value in other.state_dict().items():
        np.testing.assert_array_equal(value, pair.state_dict()[name])
