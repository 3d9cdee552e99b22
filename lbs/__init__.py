"""lbs: find local merchants and time-limited deals near where you stand."""
