"""Prefect tasks: thin wrappers over the `asif` library functions."""
