"""Type aliases of portable_nn's public API, in one place.

The array API standard gives arrays no common static type (a NumPy ``ndarray``, a
``torch.Tensor`` and a ``jax.Array`` share only a protocol), so arrays are typed :data:`Array`
(``Any``) and the names below say what each argument means.

Examples
--------
>>> from portable_nn.typing import Array, Params
>>> def l2(params: Params) -> float:
...     return sum(float((p * p).sum()) for p in params.values())
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any, TypeAlias

__all__ = ["Array", "Backend", "DType", "Device", "Initializer", "Namespace", "Params", "Grads", "Seed"]

#: An array of any supported backend (NumPy, CuPy, torch, JAX, array-api-strict, Dask).
Array: TypeAlias = Any
#: An array-API namespace: ``array_api_compat.numpy``, ``torch``, ``jax.numpy``, ``array_api_strict``, ...
Namespace: TypeAlias = ModuleType
#: What ``xp=`` accepts: a backend name (``"numpy"``, ``"torch"``, ...), a namespace, or an array of it.
Backend: TypeAlias = "str | ModuleType | Any"
#: A device: a portable string (``"cpu"``, ``"cuda:1"``, ``"device1"``) or the backend's own device object.
Device: TypeAlias = Any
#: A dtype: a name (``"float32"``, ``"bfloat16"``, ...) or the backend's own dtype object.
DType: TypeAlias = Any
#: A seed: an int, a ``numpy.random.Generator``, or None for fresh entropy.
Seed: TypeAlias = Any
#: Parameters by qualified name (``"0.weight"``), as ``named_parameters()`` returns them.
Params: TypeAlias = Mapping[str, Array]
#: Gradients by parameter name, as ``named_grads()`` returns them (None: no gradient yet).
Grads: TypeAlias = Mapping[str, "Array | None"]
#: A per-parameter initializer: ``init(rng, shape, *, fan_in, fan_out) -> host array`` (see ``portable_nn.init``).
Initializer: TypeAlias = Callable[..., Any]
