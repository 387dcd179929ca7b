"""Headcount: the capacity authority of an event platform."""

__version__ = "0.1.0"
