"""Unit tests of portable_nn/training/ (where a test goes: tests/README.md)."""
