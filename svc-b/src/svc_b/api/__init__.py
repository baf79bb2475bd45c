"""Orders's HTTP API under /api/svc-b: Litestar controllers and msgspec schemas."""
