"""Catalog's HTTP API under /api/svc-a: Litestar controllers and msgspec schemas."""
