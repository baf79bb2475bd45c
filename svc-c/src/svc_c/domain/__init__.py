"""Payments's domain model: pure Python. No framework, ORM or HTTP import belongs here
(tests/unit/test_architecture.py and the stage gate check it).

- :mod:`svc_c.domain.model` — the Payment aggregate and its statuses;
- :mod:`svc_c.domain.ledger` — double-entry movements, entries and derived balances;
- :mod:`svc_c.domain.processor` — the simulated card processor and its test tokens;
- :mod:`svc_c.domain.errors` — the domain's errors on the commons hierarchy.
"""
