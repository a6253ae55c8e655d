"""Dry runs: simulate, preview and the demo, on the real engine with injected time."""
