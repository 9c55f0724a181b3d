"""Benchmarks of portable_nn (not part of the installed package): ``python -m benchmarks.bench``."""
