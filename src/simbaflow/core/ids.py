"""Identifiers built from numbers: safe in paths, ids and C comments."""

from __future__ import annotations


def number_token(x: float) -> str:
    """Path- and id-safe text of a number that round-trips (``0.7`` -> ``0p7``, ``-1e-05`` -> ``m1em05``)."""
    s = repr(float(x))
    if s.endswith(".0"):
        s = s[:-2]
    return s.replace("-", "m").replace("+", "").replace(".", "p")
