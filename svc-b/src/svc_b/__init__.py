"""svc-b — the Orders service: orders and the order saga across catalog and payments.

Built in stages 7–9 of the plan (domain → infrastructure → API); see the README.
"""

from importlib.metadata import PackageNotFoundError, version

SERVICE_NAME = "svc-b"

try:
    __version__ = version("svc-b")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without metadata
    __version__ = "0.0.0"
