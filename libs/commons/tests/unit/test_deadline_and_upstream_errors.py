"""Deadline header parsing and the problem+json → typed error mapping (no I/O)."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from caravan_commons.deadline import (
    DEADLINE_HEADER,
    Deadline,
    current_deadline,
    deadline_from_headers,
    use_deadline,
)
from caravan_commons.errors import (
    ALL_ERRORS,
    PROBLEM_TYPE_BASE,
    ApplicationError,
    ClientError,
    NotFoundError,
    ServerError,
    TooManyRequestsError,
    ValidationError,
)
from caravan_commons.problems import problem_document
from caravan_commons.upstream_errors import error_from_answer


class Clock:
    def __init__(self, now: float = 50.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_deadline_remaining_and_header() -> None:
    clock = Clock()
    deadline = Deadline.after(1.5, clock)
    assert deadline.header_value() == "1500"
    clock.now += 1.0
    assert deadline.remaining() == pytest.approx(0.5)
    clock.now += 1.0
    assert deadline.remaining() == 0.0 and deadline.expired and deadline.header_value() == "0"


def test_earliest_picks_the_tighter_deadline() -> None:
    clock = Clock()
    short, long = Deadline.after(1, clock), Deadline.after(5, clock)
    assert long.earliest(short) is short and short.earliest(long) is short and long.earliest(None) is long


def test_deadline_from_headers() -> None:
    clock = Clock()
    assert deadline_from_headers({DEADLINE_HEADER: "250"}, clock=clock).remaining() == pytest.approx(0.25)
    assert deadline_from_headers({}, clock=clock) is None
    assert deadline_from_headers({}, default_timeout=2.0, clock=clock).remaining() == pytest.approx(2.0)
    capped = deadline_from_headers({DEADLINE_HEADER: "999999"}, max_timeout=10.0, clock=clock)
    assert capped.remaining() == pytest.approx(10.0)


@pytest.mark.parametrize("raw", ["-5", "1.5", "soon", "", "9" * 13])
def test_malformed_deadline_header_is_a_validation_error(raw: str) -> None:
    with pytest.raises(ValidationError, match=DEADLINE_HEADER):
        deadline_from_headers({DEADLINE_HEADER: raw})


def test_use_deadline_sets_and_restores_the_current_one() -> None:
    deadline = Deadline.after(1)
    assert current_deadline() is None
    with use_deadline(deadline):
        assert current_deadline() is deadline
    assert current_deadline() is None


PROBLEM = {"content-type": "application/problem+json"}
extension_values = st.none() | st.booleans() | st.integers(-1000, 1000) | st.text(max_size=10)
extensions = st.dictionaries(
    st.text(min_size=1, max_size=10).filter(
        lambda k: k not in {"type", "title", "status", "detail", "instance", "retry_after"}
    ),
    extension_values | st.lists(extension_values, max_size=3),
    max_size=4,
)


@given(st.sampled_from(ALL_ERRORS), st.text(min_size=1, max_size=50), extensions)
def test_problem_documents_map_back_to_the_class_with_detail_and_extensions(
    cls: type[ApplicationError], detail: str, ext: dict
) -> None:
    doc = {
        "type": PROBLEM_TYPE_BASE + cls.slug,
        "title": cls.title,
        "status": cls.status,
        "detail": detail,
        **ext,
    }
    error = error_from_answer("svc-a", cls.status, PROBLEM, msgspec.json.encode(doc))
    assert error.slug == cls.slug and error.status == cls.status
    assert error.detail == detail and error.extensions == ext
    assert error.upstream == "svc-a"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("status", "expected"), [(400, ClientError), (404, NotFoundError), (418, ClientError), (599, ServerError)]
)
def test_non_problem_answers_map_by_status(status: int, expected: type) -> None:
    error = error_from_answer("svc-c", status, {"content-type": "text/plain"}, b"teapot says no")
    assert isinstance(error, expected) and error.status == status
    assert error.detail == f"svc-c answered {status}: teapot says no"


def test_foreign_problem_types_keep_their_type_and_instance() -> None:
    body = msgspec.json.encode(
        {"type": "https://example.org/out-of-credit", "detail": "d", "instance": "/acct/1"}
    )
    error = error_from_answer("svc-c", 403, PROBLEM, body)
    assert error.problem_type == "https://example.org/out-of-credit"  # type: ignore[attr-defined]
    assert error.problem_instance == "/acct/1"  # type: ignore[attr-defined]


def test_retry_after_comes_from_the_header() -> None:
    body = msgspec.json.encode({"type": PROBLEM_TYPE_BASE + "too-many-requests", "detail": "d"})
    error = error_from_answer("svc-c", 429, {**PROBLEM, "Retry-After": "3"}, body)
    assert isinstance(error, TooManyRequestsError) and error.retry_after == 3.0


@pytest.mark.parametrize(("status", "slug"), [(503, "upstream-unavailable"), (409, "conflict")])
def test_retry_after_is_kept_on_any_error_that_sends_it(status: int, slug: str) -> None:
    """A 503 or an in-flight 409 with Retry-After: the caller (svc-b's saga) honours it (issue 15)."""
    body = msgspec.json.encode({"type": PROBLEM_TYPE_BASE + slug, "detail": "d"})
    error = error_from_answer("svc-c", status, {**PROBLEM, "Retry-After": "2"}, body)
    assert error.status == status and error.extensions["retry_after"] == 2.0
    plain = error_from_answer("svc-c", status, PROBLEM, body)
    assert "retry_after" not in plain.extensions


def test_garbage_json_still_gives_a_typed_error() -> None:
    error = error_from_answer("svc-a", 502, {"content-type": "application/json"}, b"{not json")
    assert isinstance(error, ServerError) and error.status == 502


@given(st.sampled_from(ALL_ERRORS), st.text(min_size=1, max_size=50), extensions)
def test_round_trip_through_the_real_problem_mapping(
    cls: type[ApplicationError], detail: str, ext: dict
) -> None:
    original = cls(detail, **ext)
    body = msgspec.json.encode({**problem_document(original), "instance": "/x/1"})
    back = error_from_answer("svc-b", original.status, PROBLEM, body)
    assert type(back) is cls or (cls.slug == back.slug and cls.status == back.status)
    assert (back.detail, back.extensions, back.status) == (
        original.detail,
        original.extensions,
        original.status,
    )
    assert back.problem_instance == "/x/1"  # type: ignore[attr-defined]
