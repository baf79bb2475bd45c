"""LIVE tests against a real Nomad agent: they run only when NOMAD_ADDR is set (e.g. `nomad agent
-dev`), and are skipped with that reason otherwise. Set CARAVAN_LIVE_NOMAD_SERVICE to the name of a
native (provider = "nomad") service with a passing check to also require that it resolves. The
contract tests (test_contract_nomad.py) run everywhere."""

from __future__ import annotations

import os

import pytest

LIVE = {k: v for k, v in os.environ.items() if k.startswith("NOMAD_")}
SERVICE = os.environ.get("CARAVAN_LIVE_NOMAD_SERVICE")
pytestmark = pytest.mark.skipif(
    "NOMAD_ADDR" not in LIVE, reason="live Nomad tests need NOMAD_ADDR (a real agent)"
)
nomad = pytest.importorskip("nomad", reason="python-nomad is not installed: `nox -s commons_nomad`")

from caravan_commons.discovery_nomad import NomadAdapter, NomadConfig, NomadResolver  # noqa: E402


@pytest.fixture(autouse=True)
def _no_consul_or_nomad_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith(("CONSUL_", "NOMAD_")):
            monkeypatch.delenv(key)


async def test_native_services_resolve_on_a_real_agent() -> None:
    adapter = NomadAdapter(NomadConfig.from_env(LIVE))
    assert adapter.registrations("caravan-live-no-such-service") == []
    if SERVICE:
        instances = await NomadResolver(adapter).resolve(SERVICE)
        assert instances, f"no healthy instance of {SERVICE!r}"
        assert all(i.port > 0 and i.host for i in instances)
