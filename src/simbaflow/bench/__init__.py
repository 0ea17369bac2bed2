"""Bench stage: ScopeMimicry records and their comparison with runs."""
