"""Header handling of the proxy path (Hypothesis)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from caravan_gateway import headers as hdr

token = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=12).map(str.encode)
value = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=30).map(str.encode)
special = st.sampled_from(
    sorted(hdr.HOP_BY_HOP | hdr.GATEWAY_ASSERTED | {b"host", b"authorization", b"x-api-key", b"expect",
                                                   b"traceparent", b"x-request-id", b"x-forwarded-for"})
)  # fmt: skip
header_lists = st.lists(st.tuples(st.one_of(token, special), value), max_size=20)


def forward(headers, **kw):
    return hdr.upstream_request_headers(headers, client_ip=b"127.0.0.9", request_id=b"rid-1", **kw)


@given(header_lists, st.lists(token, max_size=3))
def test_no_hop_by_hop_or_gateway_asserted_header_reaches_a_service(headers, listed):
    headers = [*headers, (b"connection", b", ".join(listed))]
    out = forward(headers)
    names = [n for n, _ in out]
    for name in names:
        assert name not in hdr.HOP_BY_HOP
        assert name not in hdr.GATEWAY_ASSERTED
        assert name not in listed or name in (b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host",
                                              b"x-request-id")  # fmt: skip
        assert name not in (b"authorization", b"x-api-key", b"expect", b"host", b"traceparent")


@given(header_lists)
def test_end_to_end_headers_pass_unchanged_and_in_order(headers):
    consumed = hdr.HOP_BY_HOP | hdr.GATEWAY_ASSERTED | hdr._CONSUMED
    listed = hdr.connection_tokens(headers)
    expected = [(n, v) for n, v in headers if n not in consumed and n not in listed]
    out = forward(headers)
    assert out[: len(expected)] == expected


@given(header_lists)
def test_forwarding_headers_are_set_once_and_x_forwarded_for_appends_the_client(headers):
    out = forward(headers, extra=[(b"x-caravan-customer", b"acme")])
    by_name: dict[bytes, list[bytes]] = {}
    for n, v in out:
        by_name.setdefault(n, []).append(v)
    for name in (b"x-forwarded-for", b"x-forwarded-proto", b"x-request-id", b"x-caravan-customer"):
        assert len(by_name[name]) == 1
    assert by_name[b"x-forwarded-for"][0].endswith(b"127.0.0.9")
    assert by_name[b"x-request-id"] == [b"rid-1"]
    assert by_name[b"x-caravan-customer"] == [b"acme"]
    earlier = [v for n, v in headers if n == b"x-forwarded-for"]
    if earlier:
        assert by_name[b"x-forwarded-for"][0] == b", ".join([*earlier, b"127.0.0.9"])


@given(header_lists, st.lists(token, max_size=3))
def test_answers_lose_hop_by_hop_length_and_request_id_headers_only(headers, listed):
    headers = [*headers, (b"connection", b",".join(listed))]
    out = hdr.downstream_response_headers(headers)
    dropped = hdr.HOP_BY_HOP | {b"content-length", b"x-request-id"} | hdr.connection_tokens(headers)
    assert out == [(n, v) for n, v in headers if n not in dropped]


@given(st.binary(max_size=40))
def test_request_ids_are_kept_only_when_they_look_like_ids(raw):
    ok = hdr.valid_request_id(raw)
    if ok:
        assert 8 <= len(raw) <= 64 and all(
            c in b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_" for c in raw
        )


@pytest.mark.parametrize(
    "raw", [b"../../etc/passwd", b"a=b+c/d@e:f", b"short", b"x" * 65, b"id\xc3\xa9-12345678"]
)
def test_a_request_id_that_is_not_an_id_is_replaced(raw):
    """Regression (issue 18, defect 9): these were accepted as they came."""
    assert not hdr.valid_request_id(raw)


def test_serialize_makes_a_message_head():
    assert hdr.serialize(b"GET / HTTP/1.1", [(b"a", b"1")]) == b"GET / HTTP/1.1\r\na: 1\r\n\r\n"
