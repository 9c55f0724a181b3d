"""Statistics of portable_nn.nn.rng's draws (on NumPy: every backend draws the same bits, conformance/test_rng.py).

Sizes make a failure meaningful: with n = 20,000 draws the bounds are 5 standard errors (a false alarm about once
in 1.7 million runs per check), while a biased or correlated stream lies far out: a mean off by 0.02 is 10
standard errors, a correlation of 0.1 is 14, a stuck bit 141.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from portable_nn.nn import rng
from portable_nn.testing import to_numpy

N = 20_000
Z = 5.0
seeds = st.integers(0, 2**64 - 1)


@settings(max_examples=10, deadline=None)
@given(seed=seeds)
def test_uniform_mean_variance_and_bins(seed):
    u = to_numpy(rng.uniform(rng.key(seed, xp="numpy"), (N,), dtype="float64"))
    assert abs(u.mean() - 0.5) < Z * math.sqrt(1 / 12 / N)
    assert abs(u.var() - 1 / 12) < Z * math.sqrt((1 / 80 - 1 / 144) / N)
    counts = np.bincount((u * 16).astype(int), minlength=16)
    chi2 = float(((counts - N / 16) ** 2 / (N / 16)).sum())
    assert chi2 < 60.0  # 15 degrees of freedom: P(chi2 > 60) ~ 2.5e-7


@settings(max_examples=10, deadline=None)
@given(seed=seeds)
def test_every_bit_is_fair(seed):
    bits = to_numpy(rng.random_bits(rng.key(seed, xp="numpy"), (N,))).astype(np.int64) & 0xFFFFFFFF
    ones = np.array([((bits >> b) & 1).mean() for b in range(32)])
    assert np.all(np.abs(ones - 0.5) < Z * 0.5 / math.sqrt(N))


@settings(max_examples=10, deadline=None)
@given(seed=seeds, data=st.integers(2, 2**32 - 2))  # 0 and 1 are the split keys themselves
def test_split_and_folded_keys_draw_uncorrelated_streams(seed, data):
    k = rng.key(seed, xp="numpy")
    draws = [to_numpy(rng.uniform(sub, (N,), dtype="float64")) for sub in (k, *rng.split(k, 2), rng.fold_in(k, data))]
    draws.append(to_numpy(rng.uniform(rng.fold_in(k, data + 1), (N,), dtype="float64")))  # neighbouring counters
    correlation = np.corrcoef(np.stack(draws))
    off_diagonal = correlation[~np.eye(len(draws), dtype=bool)]
    assert np.all(np.abs(off_diagonal) < Z / math.sqrt(N))


@settings(max_examples=10, deadline=None)
@given(seed=seeds, p=st.floats(0.05, 0.95))
def test_bernoulli_fraction(seed, p):
    mask = to_numpy(rng.bernoulli(rng.key(seed, xp="numpy"), p, (N,)))
    assert abs(mask.mean() - p) < Z * math.sqrt(p * (1 - p) / N)


def test_neighbouring_elements_are_uncorrelated():
    u = to_numpy(rng.uniform(rng.key(0, xp="numpy"), (4 * N,), dtype="float64"))
    for lag in (1, 2, 3):
        r = np.corrcoef(u[:-lag], u[lag:])[0, 1]
        assert abs(r) < Z / math.sqrt(u.size)
