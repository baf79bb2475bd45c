"""Catalog's domain: products, stock and reservations. Pure Python: no framework, ORM or I/O."""
