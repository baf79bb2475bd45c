"""Payments's domain model: pure Python. No framework, ORM or HTTP import belongs here
(tests/unit/test_architecture.py checks it)."""
