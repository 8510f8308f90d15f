"""Tests of what lockstock changes in or around Faust (the eager drain, commits in flight, recovery
order, the state cache and store writes); streams/upstream.py pins the Faust code they rely on."""
