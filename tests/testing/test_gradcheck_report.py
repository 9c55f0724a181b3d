"""A failing ``check_gradients`` reads as one short report in pytest, not pages of the checker's own source."""

from __future__ import annotations

pytest_plugins = ["pytester"]

FAILING = """
import numpy as np
from portable_nn import functional as F
from portable_nn.testing import check_gradients


def test_sign_flipped():
    rng = np.random.default_rng(0)
    x, w, b = rng.normal(size=(2, 3)), rng.normal(size=(4, 3)), rng.normal(size=4)

    def backward(g, x, w, b):
        grad_x, grad_w, grad_b = F.linear_backward(g, x, w, b is not None)
        return -grad_x, grad_w, grad_b

    check_gradients(F.linear, backward, [x, w, b], names=["x", "weight", "bias"], autograd=False)
"""


def test_failure_report_is_short(pytester):
    pytester.makepyfile(FAILING)
    result = pytester.runpytest("-p", "no:portable_nn", "-q")
    result.assert_outcomes(failed=1)
    report = result.stdout.str()
    assert "gradient for 'x' disagrees with finite differences" in report
    failure = report[report.index("test_sign_flipped _") : report.index("short test summary")]
    # The test's own source, the caller's line and the message; none of the checker's frames.
    assert "def _finite_differences" not in failure and "def assert_close" not in failure
    assert len(failure.splitlines()) < 40, failure
