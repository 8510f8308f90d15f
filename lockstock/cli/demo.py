"""`lockstock demo`: placeholder replaced below."""
