"""svc-c — the Payments service: authorise, capture, void, refund and a double-entry ledger.

Built in stages 10–12 of the plan (domain → infrastructure → API); see the README.
"""

from importlib.metadata import PackageNotFoundError, version

SERVICE_NAME = "svc-c"

try:
    __version__ = version("svc-c")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without metadata
    __version__ = "0.0.0"
