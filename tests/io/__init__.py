"""Unit tests of portable_nn/io/ (where a test goes: tests/README.md)."""
