"""`lockstock sheet`: (being written this session)."""
