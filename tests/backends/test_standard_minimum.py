"""The minimum standard, 2023.12: the whole library on array-api-strict restricted to it, against NumPy.

Two configurations of array-api-strict (its flags are process-wide: each test sets them and
restores the previous ones): ``api_version="2023.12"``, and the same without boolean indexing and
data-dependent shapes (what lazy and compiled namespaces lack). Each runs the shared workload of
``conformance/namespace_workload.py`` (Linear, Sequential with every activation, every loss with its
options, every optimizer through ``train_step``, ``clip_grad_norm_``, save and load) and compares it
with NumPy in float64. An older standard is refused with a NamespaceError naming the minimum.
"""

from __future__ import annotations

import pytest

import portable_nn as pnn
from conformance.namespace_workload import STEPS, assert_matches_numpy
from portable_nn.backends.base import MINIMUM_API_VERSION

strict = pytest.importorskip("array_api_strict")

CONFIGURATIONS = {
    "2023.12": {"api_version": "2023.12"},
    "2023.12-no-data-dependent": {
        "api_version": "2023.12",
        "boolean_indexing": False,
        "data_dependent_shapes": False,
    },
}


@pytest.mark.parametrize("step", STEPS)
@pytest.mark.parametrize("configuration", list(CONFIGURATIONS))
def test_library_runs_on_the_minimum_standard(configuration, step):
    with strict.ArrayAPIStrictFlags(**CONFIGURATIONS[configuration]):
        assert strict.__array_api_version__ == MINIMUM_API_VERSION
        assert_matches_numpy("array_api_strict", step)


def test_older_standard_is_refused_naming_the_minimum():
    with (
        strict.ArrayAPIStrictFlags(api_version="2022.12"),
        pytest.raises(pnn.NamespaceError, match=r"array API version 2022\.12; portable_nn needs 2023\.12"),
    ):
        pnn.Linear(2, 3, xp="array_api_strict")
