"""Unit tests of portable_nn/optim/ (where a test goes: tests/README.md)."""
