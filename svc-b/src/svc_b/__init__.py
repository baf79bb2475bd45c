"""svc-b — Orders: a Caravan service."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("svc-b")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without metadata
    __version__ = "0.0.0"
