"""Geometry: great-circle distance, the in-process H3 nearby index, time zones."""
