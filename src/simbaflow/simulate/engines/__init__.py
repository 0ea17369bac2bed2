"""Simulation engines behind one interface (see :mod:`simbaflow.simulate.engines.base`)."""
