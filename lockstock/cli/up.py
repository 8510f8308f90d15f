"""`lockstock up`: (being written this session)."""
