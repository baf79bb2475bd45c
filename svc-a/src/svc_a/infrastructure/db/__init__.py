"""Catalog's database: piccolo tables, app, conf, migrations and the migrate command."""
