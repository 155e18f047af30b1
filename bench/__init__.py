"""Benchmarks: scripts that print figures. Never pass/fail timing tests."""
