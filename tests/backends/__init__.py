"""Unit tests of portable_nn/backends/ (where a test goes: tests/README.md)."""
