"""Idempotency fingerprints and key parsing (no I/O)."""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from caravan_commons.errors import ValidationError
from caravan_commons.idempotency import (
    MAX_KEY_LENGTH,
    canonical_body,
    fingerprint,
    header_value,
    key_id,
    require_key,
)

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=25,
)


def shuffled(value: object, rng: random.Random) -> object:
    """The same JSON value with every object's keys in another order."""
    if isinstance(value, dict):
        items = list(value.items())
        rng.shuffle(items)
        return {k: shuffled(v, rng) for k, v in items}
    if isinstance(value, list):
        return [shuffled(v, rng) for v in value]
    return value


@given(json_values, st.randoms(use_true_random=False), st.sampled_from([None, 0, 2, "\t"]), st.booleans())
def test_same_json_in_any_key_order_and_whitespace_has_the_same_fingerprint(
    value: object, rng: random.Random, indent: object, ascii_only: bool
) -> None:
    compact = json.dumps(value).encode()
    other = json.dumps(shuffled(value, rng), indent=indent, ensure_ascii=ascii_only).encode()  # type: ignore[arg-type]
    assert fingerprint("POST", "/orders", compact) == fingerprint("post", "/orders", b"  " + other + b"\n")


@given(json_values, json_values)
def test_any_change_in_the_body_changes_the_fingerprint(a: object, b: object) -> None:
    # Different values (by their canonical encoding) never share a fingerprint.
    body_a, body_b = json.dumps(a).encode(), json.dumps(b).encode()
    if canonical_body(body_a) != canonical_body(body_b):
        assert fingerprint("POST", "/orders", body_a) != fingerprint("POST", "/orders", body_b)


@given(st.dictionaries(st.text(max_size=8), scalars, min_size=1, max_size=6), st.data())
def test_changing_one_member_changes_the_fingerprint(doc: dict[str, object], data: st.DataObject) -> None:
    key = data.draw(st.sampled_from(sorted(doc)))
    new_value = data.draw(scalars.filter(lambda v: json.dumps(v) != json.dumps(doc[key])))
    changed = {**doc, key: new_value}
    assert fingerprint("POST", "/p", json.dumps(doc).encode()) != fingerprint(
        "POST", "/p", json.dumps(changed).encode()
    )


@given(st.binary(max_size=64))
def test_method_and_path_are_part_of_the_fingerprint(body: bytes) -> None:
    base = fingerprint("POST", "/reservations", body)
    assert base != fingerprint("PUT", "/reservations", body)
    assert base != fingerprint("POST", "/reservations/1", body)
    assert base == fingerprint("POST", "/reservations", body)


def test_non_json_bodies_are_hashed_as_they_are() -> None:
    assert fingerprint("POST", "/", b"a=1&b=2") != fingerprint("POST", "/", b"b=2&a=1")
    assert canonical_body(b"not json {") == b"not json {"


@given(st.text(min_size=1, max_size=MAX_KEY_LENGTH).filter(str.isprintable))
def test_keys_round_trip_through_the_sf_string_header(key: str) -> None:
    assert require_key({"Idempotency-Key": header_value(key)}) == key


def test_bare_token_keys_are_accepted() -> None:
    assert require_key({"Idempotency-Key": "abc-123"}) == "abc-123"


def test_missing_key_is_a_clear_validation_error_when_required() -> None:
    with pytest.raises(ValidationError, match="requires an Idempotency-Key header") as info:
        require_key({})
    assert info.value.status == 400
    assert require_key({}, required=False) is None


@pytest.mark.parametrize("raw", ['""', "", "x" * (MAX_KEY_LENGTH + 1), "a\nb"])
def test_malformed_keys_are_refused(raw: str) -> None:
    with pytest.raises(ValidationError, match="printable characters"):
        require_key({"Idempotency-Key": raw})


def test_key_ids_are_scoped() -> None:
    assert key_id("k") != key_id("k", scope="svc-b")
    assert len(key_id("k" * 255)) == 64
