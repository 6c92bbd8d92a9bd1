"""Raises while being imported."""

raise RuntimeError("the database is not configured")
