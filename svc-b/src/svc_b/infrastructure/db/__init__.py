"""Orders' database: piccolo tables, app, migrations, repositories and the unit of work."""
