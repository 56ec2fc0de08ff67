"""The run request's fields, read from the host's own schema (``_request_schema.json``, generated from
src/protocol/ by scripts/gen-python-schema.ts): each keyword a run takes, its wire name and how its
value is encoded. A field added to the schema is encoded here without a second hand-written copy;
tests/test_schema.py checks that every one is also a keyword of each ``run`` method.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any, Mapping

__all__ = ["Field", "RUN_FIELDS", "SESSION_FIELDS", "snake_case"]


@dataclass(frozen=True)
class Field:
    wire: str
    #: "integer", "string", "strings" (list of str), "string-map" (str -> str), "content" (str or
    #: bytes), "content-map" (str -> str or bytes), "bytes" (base64 on the wire) or "json" (as is).
    kind: str
    description: str
    unit: str


def snake_case(name: str) -> str:
    """``maxOutputFilesTotalBytes`` -> ``max_output_files_total_bytes``."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _is_content(schema: Mapping[str, Any]) -> bool:
    branches = schema.get("anyOf", [])
    return any(b.get("type") == "string" for b in branches) and any("content" in b.get("properties", {}) for b in branches)


def _kind(schema: Mapping[str, Any]) -> str:
    kind = schema.get("type")
    if kind in ("integer", "string"):
        return kind
    if kind == "array" and schema.get("items", {}).get("type") == "string":
        return "strings"
    if _is_content(schema):
        return "content"
    if kind == "object":
        values = schema.get("additionalProperties")
        if isinstance(values, dict) and values.get("type") == "string":
            return "string-map"
        if isinstance(values, dict) and _is_content(values):
            return "content-map"
        if schema.get("properties", {}).get("encoding", {}).get("const") == "base64":
            return "bytes"
    return "json"


def _unit(name: str) -> str:
    return "milliseconds" if name.endswith("Ms") else "bytes" if name.endswith("Bytes") else "units"


def _fields(document: Mapping[str, Any]) -> dict[str, Field]:
    properties = document["properties"]
    return {snake_case(name): Field(name, _kind(schema), schema.get("description", ""), _unit(name)) for name, schema in properties.items()}


_DOCUMENT = json.loads(resources.files(__package__).joinpath("_request_schema.json").read_text("utf-8"))
#: Keyword -> field of a run request, in the schema's order.
RUN_FIELDS: dict[str, Field] = _fields(_DOCUMENT["run"])
#: Keyword -> field of a session's options.
SESSION_FIELDS: dict[str, Field] = _fields(_DOCUMENT["session"])
