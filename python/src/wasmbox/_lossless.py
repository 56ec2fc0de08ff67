"""The lossless form of a run's value (``valueLossless`` on the wire; docs/values.md) decoded into
the exact Python value: ints of any size, floats that are integral or not finite, tuples, dicts
with any keys, bytes, sets, dates and times, decimals, fractions, complex numbers and UUIDs."""

from __future__ import annotations

import base64
import datetime
import decimal
import fractions
import uuid
from typing import Any, Callable

from ._errors import ProtocolError

__all__ = ["decode_lossless"]


def _pairs(body: Any) -> list:
    if not isinstance(body, list) or not all(isinstance(p, list) and len(p) == 2 for p in body):
        raise ProtocolError("host sent a malformed $dict")
    return body


_TAGS: dict[str, Callable[[Any], Any]] = {
    "$int": lambda body: int(body),
    "$float": lambda body: float(body),
    "$tuple": lambda body: tuple(decode_lossless(v) for v in body),
    "$dict": lambda body: {decode_lossless(k): decode_lossless(v) for k, v in _pairs(body)},
    "$bytes": lambda body: base64.b64decode(body, validate=True),
    "$bytearray": lambda body: bytearray(base64.b64decode(body, validate=True)),
    "$set": lambda body: {decode_lossless(v) for v in body},
    "$frozenset": lambda body: frozenset(decode_lossless(v) for v in body),
    "$complex": lambda body: complex(decode_lossless(body[0]), decode_lossless(body[1])),
    "$datetime": lambda body: datetime.datetime.fromisoformat(body),
    "$date": lambda body: datetime.date.fromisoformat(body),
    "$time": lambda body: datetime.time.fromisoformat(body),
    "$timedelta": lambda body: datetime.timedelta(days=body[0], seconds=body[1], microseconds=body[2]),
    "$decimal": lambda body: decimal.Decimal(body),
    "$fraction": lambda body: fractions.Fraction(decode_lossless(body[0]), decode_lossless(body[1])),
    "$uuid": lambda body: uuid.UUID(body),
}


def decode_lossless(tree: Any) -> Any:
    """The Python value of a lossless tree. Raises ProtocolError when it is malformed."""
    if isinstance(tree, list):
        return [decode_lossless(v) for v in tree]
    if not isinstance(tree, dict):
        return tree
    if len(tree) == 1:
        ((key, body),) = tree.items()
        if key.startswith("$"):
            decode = _TAGS.get(key)
            if decode is None:
                raise ProtocolError(f"host sent a value with an unknown tag {key!r}")
            try:
                return decode(body)
            except ProtocolError:
                raise
            except (TypeError, ValueError, IndexError, KeyError, decimal.InvalidOperation) as cause:
                raise ProtocolError(f"host sent a malformed {key} value: {cause}") from cause
    return {k: decode_lossless(v) for k, v in tree.items()}
