"""Deterministic simulation (the faults/simulator issue). Empty for now."""
