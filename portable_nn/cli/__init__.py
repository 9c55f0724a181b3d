"""``python -m portable_nn`` / ``portable-nn``: train one model on every backend and compare, list backends.

Subcommands:

- ``train`` (the default): trains an MLP (2→64→64→3 on the seeded spiral dataset by default)
  with the same seed on every available backend × device × dtype, then prints a table of final
  loss, test accuracy, wall time and the max |Δ| of the final weights against the NumPy run.
- ``info``: the backends installed here, their versions, devices and dtypes, and why any is unavailable.
- ``bench``: moved out of the package; a usage error pointing to ``python -m benchmarks.bench``.

Bad input ends with a one-line ``portable-nn: error: ...`` and exit status 2, before any
training; a run that fails (diverges, loses its cluster, ...) is reported as ``FAILED`` in the
output and the exit status is 1.

One module per job: ``arguments`` (options and their checks), ``plan`` (which
combinations run), ``data``, ``model``, ``train`` (one run), ``report``
(table, verdict, figures), ``outputs`` (``--json``/``--plot``/``--save``), ``info``,
and ``command`` (the entry point).
"""

from __future__ import annotations

from .command import main
from .model import build_mlp
from .plan import RUN_ORDER

__all__ = ["RUN_ORDER", "build_mlp", "main"]
