"""`lockstock audit`: (being written this session)."""
