"""Invoke task modules; the root tasks.py assembles them into the CLI."""
