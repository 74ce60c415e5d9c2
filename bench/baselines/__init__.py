"""Baselines served next to Safety Net in the same benchmark run (see bench/README.md)."""
