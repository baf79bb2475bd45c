"""svc-c's database: piccolo tables, app, conf and the migrate command."""
