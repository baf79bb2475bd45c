"""The msgspec base for every wire type (request and response bodies, events, problem documents).

Services declare their API schemas as subclasses of :class:`WireStruct`: unknown fields are
rejected (a typo in a client is a 400, not silently ignored data), and new fields must come with
defaults so older clients keep working. Constraints go in ``Annotated[..., msgspec.Meta(...)]``
and PATCH bodies use ``msgspec.UNSET``. Encoders and decoders are built once and reused.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

import msgspec

if TYPE_CHECKING:
    from caravan_commons.money import Money

T = TypeVar("T")


class WireStruct(msgspec.Struct, forbid_unknown_fields=True):
    """Base of every request/response body: unknown fields are an error."""


class FrozenWireStruct(WireStruct, frozen=True):  # type: ignore[misc]  # msgspec allows it
    """An immutable wire type (events, value objects sent over the wire)."""


class MoneyOut(WireStruct):
    """An amount in an answer: integer minor units and its ISO 4217 currency."""

    amount: int
    currency: str

    @classmethod
    def of(cls, money: Money) -> MoneyOut:
        return cls(amount=money.amount, currency=money.currency)


#: One JSON encoder for the whole process (msgspec encoders are thread-safe and reusable).
json_encoder = msgspec.json.Encoder()
#: An untyped JSON decoder (into dicts/lists); typed decoders come from :func:`decoder_for`.
json_decoder = msgspec.json.Decoder()

_DECODERS: dict[Any, msgspec.json.Decoder[Any]] = {}


def decoder_for(type_: type[T]) -> msgspec.json.Decoder[T]:
    """The (cached) JSON decoder for ``type_``; build it once per type, reuse it for every message."""
    decoder = _DECODERS.get(type_)
    if decoder is None:
        decoder = _DECODERS[type_] = msgspec.json.Decoder(type_)
    return decoder


#: The largest magnitude an integral JSON number may have to count as an integer (a signed 64-bit
#: integer, what msgspec decodes integers into); larger ones stay floats (and fail an ``int`` field).
INTEGRAL_BOUND = 2**63


def _integral_numbers(value: Any) -> Any:
    """JSON's view of numbers: ``1250.0`` is the integer 1250 (as JSON Schema counts it), recursively."""
    if isinstance(value, float) and value.is_integer() and abs(value) < INTEGRAL_BOUND:
        return int(value)
    if isinstance(value, dict):
        return {key: _integral_numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_integral_numbers(item) for item in value]
    return value


def strict_decode(body: bytes, type_: type[T]) -> T:
    """A JSON request body converted *strictly* into ``type_``.

    Litestar converts a handler's ``data`` leniently (``0`` becomes ``false``, ``"5"`` becomes
    ``5``), while the wire types promise exact JSON types; so a handler decodes its body again with
    this (``data`` stays in its signature for the OpenAPI document and Litestar's first check).
    A number with a zero fraction (``3.0``) counts as an integer, as JSON Schema says, when its
    magnitude is below :data:`INTEGRAL_BOUND`. Malformed JSON is a ``msgspec.DecodeError``, a
    mismatch a ``msgspec.ValidationError``: commons answers both with a 400 problem.
    """
    return msgspec.convert(_integral_numbers(json_decoder.decode(body)), type_, strict=True)


def encode(value: Any) -> bytes:
    """Encode ``value`` to JSON bytes with the shared encoder."""
    return json_encoder.encode(value)


__all__ = [
    "INTEGRAL_BOUND",
    "FrozenWireStruct",
    "MoneyOut",
    "WireStruct",
    "decoder_for",
    "encode",
    "json_decoder",
    "json_encoder",
    "strict_decode",
]
