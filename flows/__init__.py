"""Prefect flows of the ASIF pipeline."""
