"""The third-party tier: marray, ndonnx, pydata/sparse and cubed give NumPy's numbers in float64.

Marked ``third_party``: the plugin runs these tests on the third-party and registered backends (and
the rest of the suite on them only when ``--backends`` names them). Each runs one step of the shared
workload (``namespace_workload.py``: layers, losses, optimizers through ``train_step``, save and
load across namespaces); a function the namespace lacks skips the step with the gap as the reason,
and a known refusal of the namespace is checked to still happen, then reported as an expected failure.
"""

from __future__ import annotations

import pytest

from portable_nn.backends import get_adapter

from .namespace_workload import STEPS, NamespaceGap, assert_matches_numpy, run_step

pytestmark = pytest.mark.third_party

#: (backend, step) -> (exception, message pattern, reason): refusals of the namespace itself.
KNOWN_GAPS = {
    ("sparse", "forward_backward"): (
        ValueError,
        "requires zero fill values",
        "sparse: matmul refuses a COO array whose fill value is not 0 (a loss gradient minus a constant)",
    ),
}
#: Lazy namespaces (ndonnx, cubed: ~3 s a training step here) train with Adam only, eager ones with all five.
LAZY_OPTIONS = {"training": {"only": ("adam",)}}


@pytest.mark.parametrize("step", STEPS)
def test_workload_matches_numpy_float64(backend, step):
    options = LAZY_OPTIONS.get(step, {}) if get_adapter(backend).lazy else {}
    known = KNOWN_GAPS.get((backend, step))
    if known is not None:
        error, pattern, reason = known
        with pytest.raises(error, match=pattern):
            run_step(backend, step, **options)
        pytest.xfail(reason)
    try:
        assert_matches_numpy(backend, step, **options)
    except NamespaceGap as gap:
        pytest.skip(f"{backend}: {gap}")
