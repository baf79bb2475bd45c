"""svc-a — the Catalog service: products, prices, stock and stock reservations.

Built in stages 4–6 of the plan (domain → infrastructure → API); see the README.
"""

from importlib.metadata import PackageNotFoundError, version

SERVICE_NAME = "svc-a"

try:
    __version__ = version("svc-a")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without metadata
    __version__ = "0.0.0"
