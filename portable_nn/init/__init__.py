"""Host-side seeded initializers: parameters are drawn with NumPy, then moved to the backend.

Drawing on the host (float64, cast on the host to the target dtype) gives bit-identical
parameters for one seed on every backend and device.

A **parameter initializer** is any callable ``init(rng, shape, *, fan_in, fan_out) -> array``
returning a host array of ``shape`` (float64 or anything NumPy converts); ``rng`` is a
``numpy.random.Generator``. :meth:`portable_nn.Module.add_parameter` takes one (or the name of a
built-in) per parameter. The built-ins, by name or from the factories below:

| name | distribution |
|---|---|
| ``"zeros"``, ``"ones"`` | constants |
| ``"torch"`` (:func:`fan_in_uniform`) | U(±1/√fan_in): ``torch.nn.Linear``'s weight and bias |
| ``"uniform"`` (:func:`uniform`) | U(low, high), default U(0, 1) |
| ``"normal"`` (:func:`normal`) | N(mean, std²), default N(0, 1) |
| ``"xavier_uniform"`` / ``"glorot_uniform"`` (:func:`xavier_uniform`) | U(±gain·√(6 / (fan_in + fan_out))) |
| ``"xavier_normal"`` / ``"glorot_normal"`` (:func:`xavier_normal`) | N(0, gain²·2 / (fan_in + fan_out)) |
| ``"kaiming_uniform"`` / ``"he_uniform"`` (:func:`kaiming_uniform`) | U(±gain·√(3 / fan)), gain of ``nonlinearity`` |
| ``"kaiming_normal"`` / ``"he_normal"`` (:func:`kaiming_normal`) | N(0, gain² / fan) |

``Linear`` also keeps its presets ``init="torch" | "glorot_uniform" | "zeros"`` and the older
pair form ``init(rng, in_features, out_features) -> (weight, bias)`` (:func:`initial_parameters`).

Examples
--------
>>> import numpy as np
>>> from portable_nn import init
>>> w = init.xavier_uniform(gain=1.0)(np.random.default_rng(0), (3, 2), fan_in=2, fan_out=3)
>>> w.shape, bool(np.all(np.abs(w) <= np.sqrt(6 / 5)))
((3, 2), True)
"""

from ._parameter_inits import (
    PARAMETER_INITS,
    constant,
    draw,
    fan_in_uniform,
    kaiming_normal,
    kaiming_uniform,
    normal,
    uniform,
    xavier_normal,
    xavier_uniform,
)
from ._placeholder import placeholder
from ._presets import INITIALIZERS, LINEAR_PRESETS, glorot_uniform, initial_parameters, torch_default, zeros
from ._rng_and_fans import Initializer, ParameterInit, Seed, calculate_gain, default_fans, make_rng

__all__ = [
    "INITIALIZERS",
    "LINEAR_PRESETS",
    "PARAMETER_INITS",
    "Initializer",
    "ParameterInit",
    "Seed",
    "calculate_gain",
    "constant",
    "default_fans",
    "draw",
    "fan_in_uniform",
    "glorot_uniform",
    "initial_parameters",
    "kaiming_normal",
    "kaiming_uniform",
    "make_rng",
    "normal",
    "placeholder",
    "torch_default",
    "uniform",
    "xavier_normal",
    "xavier_uniform",
    "zeros",
]
