"""Gate probes and stage actions, one module per area; each registers itself (see registry)."""
