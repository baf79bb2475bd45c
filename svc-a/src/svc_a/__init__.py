"""svc-a — Catalog: a Caravan service."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("svc-a")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without metadata
    __version__ = "0.0.0"
