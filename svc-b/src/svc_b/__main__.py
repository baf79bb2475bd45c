"""`python -m svc_b`: serve svc-b on the configured (loopback) address.

Settings are read once (a bad variable prints one line and exits 2), as is the discovery
configuration (CARAVAN_DISCOVERY_*: where svc-a and svc-c are found); logs are JSON lines, and on
SIGTERM in-flight requests drain before the process exits (caravan_commons.server).
"""

from __future__ import annotations

import os
import sys

from caravan_commons.discovery import DiscoveryConfigError
from caravan_commons.discovery_config import resolver_from_env
from caravan_commons.logging import configure_logging
from caravan_commons.server import serve
from caravan_commons.settings import SettingsError, load_settings_or_exit
from svc_b.bootstrap import build_app
from svc_b.config import Settings


def main() -> None:
    settings = load_settings_or_exit(Settings, program="svc-b")
    try:
        resolver = resolver_from_env(os.environ)
    except (SettingsError, DiscoveryConfigError) as exc:
        print(f"svc-b: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    configure_logging(settings)
    serve(lambda s: build_app(s, resolver=resolver), settings)


if __name__ == "__main__":
    main()
