"""Unit tests of portable_nn/distributed/ (where a test goes: tests/README.md)."""
