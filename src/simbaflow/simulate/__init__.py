"""Simulate stage: .jsimba projects, run planning and batches, engines."""
