"""Adapters behind Payments's ports: database tables and repositories, clients of other services."""
