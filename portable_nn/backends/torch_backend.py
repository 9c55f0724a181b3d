"""PyTorch: CPU and CUDA tensors, bfloat16, autograd-free export, CUDA synchronization, ``torch.nn`` interop."""

from __future__ import annotations

import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any, ClassVar

import array_api_compat
import numpy as np

from .base import BackendAdapter

__all__ = ["TorchAdapter", "is_torch_module", "torch_linear"]


def _device_attribute(x: Any) -> Any:
    return x.device


class TorchAdapter(BackendAdapter):
    """PyTorch through ``array_api_compat.torch``; devices ``"cpu"`` and ``"cuda:N"``.

    Examples
    --------
    >>> adapter = TorchAdapter()
    >>> adapter.device_str(adapter.module("torch").device("cuda", 1))
    'cuda:1'
    """

    name = "torch"
    tier = "ci"
    fast_paths: ClassVar[dict[str, str]] = {
        "optimizers": "torch_foreach",
        "ops": "torch_ops",
        "scatter": "torch_scatter",
    }
    package = "torch"
    namespace_module = "array_api_compat.torch"
    gpu_capable = True
    dlpack_module = "torch"

    def is_namespace(self, module: ModuleType) -> bool:
        return bool(array_api_compat.is_torch_namespace(module))

    def native_devices(self) -> list[Any]:
        # Not __array_namespace_info__().devices(): it allocates on every device type torch knows (meta, mkldnn...).
        torch = self.module("torch")
        found = [torch.device("cpu")]
        if torch.cuda.is_available():
            found += [torch.device("cuda", i) for i in range(torch.cuda.device_count())]
        return found

    def device_str(self, device: Any) -> str:
        return "cpu" if device.type == "cpu" else str(device)

    def default_device(self) -> Any:
        return self.module("torch").get_default_device()

    def accepts_device(self, device: Any) -> bool:
        return isinstance(device, self.module("torch").device)  # e.g. "mps" or a custom backend torch knows about

    def device_getter(self) -> Callable[[Any], Any]:
        return _device_attribute

    def _dtype_object(self, xp: ModuleType, name: str) -> Any:
        found = getattr(xp, name, None)
        return found if found is not None else getattr(self.module("torch"), name, None)  # bfloat16

    def from_host(self, host: np.ndarray, device: Any) -> Any:
        return self.module("torch").from_numpy(host).to(device=device)

    def to_host(self, x: Any) -> np.ndarray:
        t = x.detach()
        if t.dtype == self.module("torch").bfloat16:
            t = t.float()
        return np.array(t.cpu().numpy())

    def has_values(self, x: Any) -> bool:
        """False inside ``torch.compile`` (reading a value breaks the graph) and for a ``torch.func`` transform's
        wrapped tensors (``vmap``, ``grad``: ``.item()`` is refused)."""
        torch = self.module("torch")
        if torch.compiler.is_compiling():
            return False
        return not torch._C._functorch.is_functorch_wrapped_tensor(x)

    def detach(self, x: Any) -> Any:
        return x.detach()  # requires_grad tensors (nn.Parameter) cannot be exported

    def synchronize(self, device: Any = None, out: Any = None) -> None:
        """Wait for CUDA work on ``device`` (or ``out``'s device; every initialized GPU when neither is given)."""
        torch = self.module("torch")
        if device is None and isinstance(out, torch.Tensor):
            device = out.device
        if device is None:
            if torch.cuda.is_initialized():
                torch.cuda.synchronize()
        elif device.type == "cuda":
            torch.cuda.synchronize(device)


def is_torch_module(obj: Any) -> bool:
    """Whether ``obj`` is a ``torch.nn.Module`` (without importing torch: if it is not loaded, it is not one)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(obj, torch.nn.Module)


def torch_linear(weight: Any, bias: Any | None) -> Any:
    """A ``torch.nn.Linear`` whose parameters are the torch tensors ``weight`` (out, in) and ``bias`` (out,).

    Built on the meta device first, so it neither allocates nor draws from torch's global RNG.
    """
    torch = BackendAdapter.module("torch")
    out_features, in_features = weight.shape
    module = torch.nn.Linear(in_features, out_features, bias=bias is not None, device="meta", dtype=weight.dtype)
    module.weight = torch.nn.Parameter(weight)
    if bias is not None:
        module.bias = torch.nn.Parameter(bias)
    return module
