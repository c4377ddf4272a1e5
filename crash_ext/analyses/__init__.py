"""Analyses: pure functions of a Port (and of a Snapshot of it)."""
