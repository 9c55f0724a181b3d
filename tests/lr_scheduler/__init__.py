"""Unit tests of portable_nn/lr_scheduler/ (where a test goes: tests/README.md)."""
