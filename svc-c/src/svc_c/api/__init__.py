"""Payments's HTTP API under /api/svc-c: Litestar controllers and msgspec schemas."""
