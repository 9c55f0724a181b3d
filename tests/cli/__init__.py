"""Unit tests of portable_nn/cli/ (where a test goes: tests/README.md)."""
