"""Adapters behind Orders's ports: database tables and repositories, clients of other services."""
