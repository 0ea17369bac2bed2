"""Promote stage: firmware headers, their checks, write-then-check."""
