"""caravan-commons: the building blocks every Caravan service and the gateway share."""

from importlib.metadata import PackageNotFoundError, version

from loguru import logger

# A library never adds log sinks: only a service's entry point does (see caravan_commons.logging).
logger.disable("caravan_commons")

try:
    __version__ = version("caravan-commons")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without metadata
    __version__ = "0.0.0"

__all__ = ["__version__"]
