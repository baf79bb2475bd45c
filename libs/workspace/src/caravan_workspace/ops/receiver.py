"""The workspace's alert receiver: an HTTP server (one supervised program, ``alert-receiver``)
that takes Alertmanager's webhooks and keeps every alert it receives in the state folder; it also
exports, for Prometheus, what Prometheus cannot see by scraping programs.

- ``POST /alerts/<route>`` — an Alertmanager webhook (``route`` names the receiver: ``critical``
  or ``warning``); each alert of the payload becomes one JSON line of
  ``<state>/monitoring/alerts/received.jsonl`` (:mod:`caravan_workspace.ops.alert_log` reads it).
- ``GET /metrics`` — ``caravan_package_index_up{index}`` (the workspace package index answers its
  health check, probed at each scrape), ``caravan_discovery_ready{discovered_service,
  discovered_program}`` (discovery's last readiness result of every instance, from its
  catalogue), ``caravan_alerts_received_total{route}``.
- ``GET /health/ready`` — 200 while it runs.

``python -m caravan_workspace.ops.receiver --state-dir DIR --port P --index-url URL``; loopback
only, standard library only.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from caravan_workspace.ops.alert_log import append_alerts
from caravan_workspace.runtime.catalog import CatalogError, read_catalog

HOST = "127.0.0.1"
ROUTES = ("critical", "warning")
MAX_BODY = 4 * 1024 * 1024
INDEX_PROBE_TIMEOUT_S = 0.5


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class Receiver:
    def __init__(self, state_dir: Path, index_url: str) -> None:
        self.state_dir = state_dir
        self.index_url = index_url.rstrip("/")
        self.received: dict[str, int] = dict.fromkeys(ROUTES, 0)
        self.lock = threading.Lock()

    def receive(self, route: str, payload: Any) -> int:
        alerts = payload.get("alerts") if isinstance(payload, dict) else None
        if not isinstance(alerts, list) or not all(isinstance(a, dict) for a in alerts):
            raise ValueError("expected an Alertmanager webhook payload with a list of alerts")
        with self.lock:
            append_alerts(self.state_dir, route, alerts, received_at=time.time())
            self.received[route] += len(alerts)
        return len(alerts)

    def index_up(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.index_url}/health", timeout=INDEX_PROBE_TIMEOUT_S) as r:
                return bool(200 <= r.status < 300)
        except (urllib.error.URLError, OSError):
            return False

    def metrics(self) -> str:
        lines = [
            "# HELP caravan_package_index_up 1 when the workspace package index answers its health check.",
            "# TYPE caravan_package_index_up gauge",
            f'caravan_package_index_up{{index="{_label(self.index_url)}"}} {1 if self.index_up() else 0}',
            "# HELP caravan_discovery_ready Discovery's last readiness result of each instance (1 ready).",
            "# TYPE caravan_discovery_ready gauge",
        ]
        try:
            catalog = read_catalog(self.state_dir)
        except CatalogError:
            catalog = {}
        for service, entries in sorted(catalog.items()):
            for entry in entries:
                labels = f'discovered_service="{_label(service)}",discovered_program="{_label(entry.id)}"'
                lines.append(f"caravan_discovery_ready{{{labels}}} {1 if entry.ready else 0}")
        lines += [
            "# HELP caravan_alerts_received_total Alerts received from Alertmanager, by route.",
            "# TYPE caravan_alerts_received_total counter",
        ]
        with self.lock:
            counts = dict(self.received)
        lines += [f'caravan_alerts_received_total{{route="{r}"}} {n}' for r, n in sorted(counts.items())]
        return "\n".join(lines) + "\n"


def handler_for(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "caravan-alert-receiver"

        def log_message(self, format: str, *args: Any) -> None:
            """One JSON line per webhook or error; scrapes and health checks (every second) are not
            logged."""
            status = str(args[1]) if len(args) > 1 else ""
            if getattr(self, "command", None) == "POST" or not status.startswith("2"):
                print(json.dumps({"request": self.requestline, "status": status}), flush=True)

        def _answer(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _problem(self, status: int, title: str, detail: str) -> None:
            body = json.dumps({"type": "about:blank", "title": title, "status": status, "detail": detail})
            self._answer(status, body.encode(), "application/problem+json")

        def do_GET(self) -> None:
            if self.path == "/metrics":
                self._answer(200, receiver.metrics().encode(), "text/plain; version=0.0.4; charset=utf-8")
            elif self.path in ("/health/ready", "/health/live"):
                self._answer(200, b'{"status":"ok"}', "application/json")
            else:
                self._problem(404, "Not Found", f"no resource at {self.path}")

        def do_POST(self) -> None:
            parts = self.path.strip("/").split("/")
            if len(parts) != 2 or parts[0] != "alerts" or parts[1] not in ROUTES:
                self._problem(404, "Not Found", f"POST /alerts/<{'|'.join(ROUTES)}>, not {self.path}")
                return
            try:
                length = int(self.headers.get("Content-Length", "0"))
            except ValueError:
                length = -1
            if not 0 < length <= MAX_BODY:
                self._problem(400, "Bad Request", f"a JSON body of 1 to {MAX_BODY} bytes is required")
                return
            try:
                count = receiver.receive(parts[1], json.loads(self.rfile.read(length)))
            except ValueError as exc:
                self._problem(400, "Bad Request", str(exc))
                return
            self._answer(200, json.dumps({"received": count}).encode(), "application/json")

    return Handler


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m caravan_workspace.ops.receiver",
        description="Receive Alertmanager webhooks into the state folder; export workspace probes.",
    )
    parser.add_argument("--state-dir", required=True, type=Path)
    parser.add_argument("--port", required=True, type=int)
    parser.add_argument(
        "--index-url", required=True, help="the workspace package index, e.g. http://127.0.0.1:18900"
    )
    args = parser.parse_args(argv)
    if not args.state_dir.is_dir():
        parser.error(f"--state-dir {args.state_dir} is not a folder")
    server = ThreadingHTTPServer((HOST, args.port), handler_for(Receiver(args.state_dir, args.index_url)))
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(json.dumps({"listening": f"{HOST}:{args.port}"}), flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
