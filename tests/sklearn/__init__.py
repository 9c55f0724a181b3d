"""Unit tests of portable_nn/sklearn/ (where a test goes: tests/README.md)."""
