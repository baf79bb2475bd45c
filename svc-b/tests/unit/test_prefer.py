"""``Prefer`` (RFC 7240) on POST /orders: which wait a header asks for, and what is echoed in
``Preference-Applied``; anything not understood is ignored."""

from __future__ import annotations

import pytest

from svc_b.api.placing import Wait, preferred_wait


@pytest.mark.parametrize(
    ("prefer", "expected"),
    [
        (None, Wait(2.0)),
        ("", Wait(2.0)),
        ("wait=5", Wait(5.0, "wait=5")),
        ("WAIT = 7", Wait(7.0, "wait=7")),
        ('wait="3"', Wait(3.0, "wait=3")),
        ("wait=0", Wait(0.0, "wait=0")),
        ("wait=100", Wait(60.0, "wait=60")),
        ("respond-async", Wait(0.0, "respond-async")),
        ("respond-async, wait=4", Wait(4.0, "respond-async, wait=4")),
        ("return=minimal, wait=1;foo=bar", Wait(1.0, "wait=1")),
        ("wait=soon", Wait(2.0)),
        ("wait=-1", Wait(2.0)),
        ("wait=1.5", Wait(2.0)),
        ("wait=99999999999999", Wait(2.0)),
        ("handling=lenient", Wait(2.0)),
        ("respond-async=yes", Wait(2.0)),
    ],
)
def test_the_wait_a_prefer_header_asks_for(prefer: str | None, expected: Wait) -> None:
    assert preferred_wait(prefer, default=2.0, maximum=60.0) == expected
