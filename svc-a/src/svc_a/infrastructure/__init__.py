"""Adapters behind Catalog's ports: database tables and repositories, clients of other services."""
