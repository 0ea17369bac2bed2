"""Simulation engines behind one interface (see :mod:`simbaflow.engines.base`)."""
