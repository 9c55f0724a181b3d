"""Testing tools for backend-neutral code: the pytest plugin's fixtures, ``assert_close``,
``check_gradients``, tolerances; hypothesis strategies in :mod:`portable_nn.testing.strategies`.

The plugin itself lives in :mod:`portable_nn.testing.plugin` and is registered automatically
through the ``pytest11`` entry point once portable_nn is installed.
"""

from __future__ import annotations

from .arrays import random_array
from .assertions import assert_close, to_numpy
from .gradcheck import GradientCheck, check_gradients
from .matrix import Combination, Selection, combinations
from .tolerances import TOLERANCES, tolerance

__all__ = [
    "TOLERANCES",
    "Combination",
    "GradientCheck",
    "Selection",
    "assert_close",
    "check_gradients",
    "combinations",
    "random_array",
    "to_numpy",
    "tolerance",
]
