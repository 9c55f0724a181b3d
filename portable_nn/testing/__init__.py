"""Testing tools for backend-neutral code: the pytest plugin's fixtures, ``assert_close``, tolerances.

The plugin itself lives in :mod:`portable_nn.testing.plugin` and is registered automatically
through the ``pytest11`` entry point once portable_nn is installed.
"""

from __future__ import annotations

from .arrays import random_array
from .assertions import assert_close, to_numpy
from .matrix import Combination, Selection, combinations
from .tolerances import TOLERANCES, tolerance

__all__ = [
    "TOLERANCES",
    "Combination",
    "Selection",
    "assert_close",
    "combinations",
    "random_array",
    "to_numpy",
    "tolerance",
]
