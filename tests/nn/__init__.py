"""Unit tests of portable_nn/nn/ (where a test goes: tests/README.md)."""
