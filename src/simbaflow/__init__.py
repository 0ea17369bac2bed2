"""simbaflow: tune power-converter controllers by simulation and ship the gains into firmware."""

__version__ = "0.1.0"
