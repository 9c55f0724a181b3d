"""Unit tests of portable_nn/testing/ (where a test goes: tests/README.md)."""
