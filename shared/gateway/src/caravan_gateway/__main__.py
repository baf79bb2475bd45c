"""``python -m caravan_gateway`` serves the gateway (settings from CARAVAN_* variables, read once);
``python -m caravan_gateway add-key --keys-file F --customer C [--scope S ...]`` creates an API key,
stores its hash in F (mode 0600) and prints the key once."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import uvloop

from caravan_commons.discovery import DiscoveryConfigError
from caravan_commons.logging import configure_logging
from caravan_commons.settings import SettingsError, exit_on_settings_error, load_settings
from caravan_gateway.auth import AuthConfigError, add_key
from caravan_gateway.routes import RouteError
from caravan_gateway.settings import GatewaySettings

PROG = "caravan-gateway"


def _add_key(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog=f"{PROG} add-key", description="Create an API key for a customer.")
    parser.add_argument("--keys-file", required=True, type=Path)
    parser.add_argument("--customer", required=True)
    parser.add_argument(
        "--scope", action="append", default=[], help="a scope such as 'operator' (repeatable)"
    )
    args = parser.parse_args(argv)
    try:
        key = add_key(args.keys_file, args.customer, args.scope)
    except (AuthConfigError, OSError) as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    print(key)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["add-key"]:
        return _add_key(args[1:])
    if args:
        print(f"{PROG}: unknown command {args[0]!r} (commands: add-key; none to serve)", file=sys.stderr)
        return 2
    try:
        settings = load_settings(GatewaySettings)
    except SettingsError as error:
        exit_on_settings_error(error, PROG)
    configure_logging(settings)
    from caravan_gateway.server import serve

    try:
        uvloop.run(serve(settings))
    except (AuthConfigError, DiscoveryConfigError, SettingsError, RouteError, OSError, ValueError) as exc:
        print(f"{PROG}: cannot start: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
