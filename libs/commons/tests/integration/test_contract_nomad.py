"""CONTRACT tests of the nomad backend: they check the adapter (python-nomad 2.1.0 underneath)
against Nomad's documented native-service-discovery HTTP contract, served by a fake agent on
127.0.0.1 (fake_nomad.py) — NOT against a real Nomad (test_live_nomad.py is for that).

``nox -s commons_nomad`` runs them with python-nomad installed.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

nomad = pytest.importorskip(
    "nomad", reason="python-nomad is not installed: `nox -s commons_nomad` runs these"
)

from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402
from fake_nomad import FakeNomad  # noqa: E402
from local_runtime_support import free_port  # noqa: E402

from caravan_commons.client import ClientConfig, ServiceClient  # noqa: E402
from caravan_commons.discovery import DiscoveryConfigError  # noqa: E402
from caravan_commons.discovery_nomad import NomadAdapter, NomadConfig, NomadError, NomadResolver  # noqa: E402
from caravan_commons.errors import UpstreamUnavailableError  # noqa: E402

ALLOC_1 = "5456bd7a-9fc0-c0dd-6131-cbee77f57577"
ALLOC_2 = "8b5e2e0c-1d35-4e5b-9f39-2a8bbd8d3f10"
ALLOC_3 = "c1d9a4e6-7777-4c1c-8e5e-0d0c6f1e2b33"


@pytest.fixture(autouse=True)
def _no_consul_or_nomad_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith(("CONSUL_", "NOMAD_")):
            monkeypatch.delenv(key)


@pytest.fixture
def fake() -> Iterator[FakeNomad]:
    with FakeNomad() as agent:
        yield agent


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def ids(instances) -> set[str]:
    return {i.meta["alloc_id"] for i in instances}


async def test_only_instances_whose_checks_all_succeed_are_returned(fake: FakeNomad) -> None:
    fake.add("svc-a", ALLOC_1, 21001, tags=["v1"])
    fake.add("svc-a", ALLOC_2, 21002)
    fake.add("svc-a", ALLOC_3, 21003)
    fake.add("svc-b", ALLOC_1, 22001)
    fake.set_check(ALLOC_1, "svc-a", "success")
    fake.set_check(ALLOC_1, "svc-a", "success", name="live", mode="healthiness")
    fake.set_check(ALLOC_1, "svc-b", "failure")  # another service's check in the same allocation
    fake.set_check(ALLOC_2, "svc-a", "success")
    fake.set_check(ALLOC_2, "svc-a", "failure", name="live")
    fake.set_check(ALLOC_3, "svc-a", "pending")
    clock = Clock()
    resolver = NomadResolver(NomadAdapter(NomadConfig(address=fake.url, refresh=5.0)), clock=clock)

    got = await resolver.resolve("svc-a")
    assert ids(got) == {ALLOC_1}
    assert (got[0].host, got[0].port, got[0].meta["tags"]) == ("127.0.0.1", 21001, "v1")
    assert await resolver.resolve("svc-b") == []
    assert await resolver.resolve("svc-none") == []
    # GET /v1/service/svc-a returned all three: the health filtering is ours
    assert next(r.path for r in fake.requests if r.path.startswith("/v1/service/")) == "/v1/service/svc-a"
    assert {r.path for r in fake.requests if r.path.endswith("/checks")} == {
        f"/v1/client/allocation/{a}/checks" for a in (ALLOC_1, ALLOC_2, ALLOC_3)
    }

    # cached until refresh; then a recovered check brings the instance back, a gone alloc leaves
    fake.set_check(ALLOC_3, "svc-a", "success")
    fake.remove_alloc(ALLOC_1)
    asked = len(fake.requests)
    assert ids(await resolver.resolve("svc-a")) == {ALLOC_1}
    assert len(fake.requests) == asked
    clock.now = 6.0
    assert ids(await resolver.resolve("svc-a")) == {ALLOC_3}


async def test_a_service_without_checks_is_kept(fake: FakeNomad) -> None:
    fake.add("svc-c", ALLOC_1, 23001)
    resolver = NomadResolver(NomadAdapter(NomadConfig(address=fake.url)))
    assert ids(await resolver.resolve("svc-c")) == {ALLOC_1}


def test_token_namespace_and_region_are_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeNomad(required_token="n0mad") as agent:
        agent.add("svc-a", ALLOC_1, 21001, namespace="shop")
        monkeypatch.setenv("NOMAD_TOKEN", "from-the-shell")
        monkeypatch.setenv("NOMAD_ADDR", f"http://127.0.0.1:{free_port()}")
        config = NomadConfig(address=agent.url, token="n0mad", namespace="shop", region="eu")
        got = NomadAdapter(config).healthy("svc-a")
        assert ids(got) == {ALLOC_1}
        service_call = next(r for r in agent.requests if r.path == "/v1/service/svc-a")
        assert service_call.query == {"namespace": "shop", "region": "eu"}
        assert {r.token for r in agent.requests} == {"n0mad"}
        with pytest.raises(NomadError, match="403"):
            NomadAdapter(NomadConfig(address=agent.url, token="wrong")).healthy("svc-a")
        env_config = NomadConfig.from_env(
            {"NOMAD_ADDR": agent.url, "NOMAD_TOKEN": "n0mad", "NOMAD_NAMESPACE": "shop"}
        )
        assert ids(NomadAdapter(env_config).healthy("svc-a")) == {ALLOC_1}


async def test_errors_serve_the_last_answer_or_fail_clearly(fake: FakeNomad) -> None:
    fake.add("svc-a", ALLOC_1, 21001)
    clock = Clock()
    resolver = NomadResolver(NomadAdapter(NomadConfig(address=fake.url, refresh=1.0)), clock=clock)
    assert ids(await resolver.resolve("svc-a")) == {ALLOC_1}
    fake.stop()
    clock.now = 5.0
    assert ids(await resolver.resolve("svc-a")) == {ALLOC_1}  # stale, logged, served
    down = NomadResolver(NomadAdapter(NomadConfig(address=f"http://127.0.0.1:{free_port()}", timeout=2)))
    with pytest.raises(UpstreamUnavailableError, match="cannot resolve 'svc-a': nomad service svc-a"):
        await down.resolve("svc-a")


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake-nomad")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "nomad.pem", tmp_path / "nomad-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    key_path.chmod(0o600)
    return cert_path, key_path


async def test_tls_is_verified_with_the_configured_ca(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    with FakeNomad(ssl_context=context) as agent:
        agent.add("svc-a", ALLOC_1, 21001)
        # python-nomad alone would not verify (verify=False is its default): the adapter does
        unverified_default = NomadAdapter(NomadConfig(address=agent.url))
        assert unverified_default.client.verify is True
        with pytest.raises(NomadError, match=r"CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
            unverified_default.healthy("svc-a")
        with_ca = NomadAdapter(NomadConfig.from_env({"NOMAD_ADDR": agent.url, "NOMAD_CACERT": str(cert)}))
        assert with_ca.client.verify == str(cert)
        assert ids(with_ca.healthy("svc-a")) == {ALLOC_1}


async def test_a_service_client_balances_over_the_healthy_nomad_instances(fake: FakeNomad) -> None:
    from aiohttp import web

    def hello(name: str):
        async def handler(_request: web.Request) -> web.Response:
            return web.Response(text=name)

        return handler

    runners, ports = [], []
    for name in ("one", "two"):
        app = web.Application()
        app.router.add_get("/", hello(name))
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        runners.append(runner)
        ports.append(runner.addresses[0][1])
    try:
        fake.add("svc-a", ALLOC_1, ports[0])
        fake.add("svc-a", ALLOC_2, ports[1])
        fake.set_check(ALLOC_1, "svc-a", "success")
        fake.set_check(ALLOC_2, "svc-a", "failure")
        resolver = NomadResolver(NomadAdapter(NomadConfig(address=fake.url, refresh=0)))
        async with ServiceClient(resolver, ClientConfig(max_attempts=1)) as client:
            assert {(await client.get("svc-a", "/")).text for _ in range(4)} == {"one"}
            fake.set_check(ALLOC_2, "svc-a", "success")
            assert {(await client.get("svc-a", "/")).text for _ in range(4)} == {"one", "two"}
    finally:
        for runner in runners:
            await runner.cleanup()


def test_bad_configuration_is_a_clear_error() -> None:
    with pytest.raises(DiscoveryConfigError, match="must be http"):
        NomadConfig.from_env({"NOMAD_ADDR": "127.0.0.1:4646"})
    with pytest.raises(DiscoveryConfigError, match="go together"):
        NomadConfig.from_env({"NOMAD_CLIENT_CERT": "/x.pem"})
