"""The Caravan console: a loopback web console over the same state, catalogue, span files and
Prometheus the CLI reads (``invoke console`` starts it). Pages are rendered on the server
(Litestar + Jinja); htmx and its SSE extension, shipped as static files, make them live.

Modules by role: ``settings`` (what the console serves, read once), ``auth`` (the login token and
the session cookie), ``readers/`` (one small reader per source: plan, programs, logs, traces,
metrics, alerts, deployments), ``runs`` (stage runs streamed over server-sent events),
``controllers`` (one per page), ``app`` (``create_app``), ``server`` (granian, loopback only).
"""
