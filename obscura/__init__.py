"""obscura: an open camera imaging system (develop, burst, look, simulate, measure)."""

__version__ = "0.1.0"
