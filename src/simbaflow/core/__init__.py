"""Shared by every stage: spec loading and validation, errors, atomic I/O, fixed point."""
