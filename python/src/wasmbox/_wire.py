"""The `serve --stdio` wire contract (src/cli/serve-stdio.ts): request encoding and reply decoding.

Only types are checked here, so that anything JSON cannot carry is refused with a clear message;
ranges, paths and languages are validated once, by the host, and come back as typed errors.
"""

from __future__ import annotations

import base64
import json
from typing import Any, Callable, Mapping, Sequence, Union

from ._errors import InvalidRequestError, ProtocolError, error_from_wire
from ._result import RunResult
from ._schema import RUN_FIELDS, SESSION_FIELDS, Field

__all__ = [
    "FileContent",
    "encode_run_request",
    "encode_session_open",
    "encode_session_run",
    "encode_session_close",
    "encode_session_save",
    "encode_session_fork",
    "encode_line",
    "line_bytes",
    "decode_reply",
    "decode_session_opened",
    "decode_session_saved",
    "decode_session_forked",
    "is_final_reply",
]

#: File content given by a caller: text (sent as UTF-8) or bytes (sent as base64).
FileContent = Union[str, bytes, bytearray, memoryview]

OutputCallback = Callable[[str], Any]


def _content(value: Any, what: str) -> Any:
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"encoding": "base64", "content": base64.b64encode(bytes(value)).decode("ascii")}
    raise InvalidRequestError(f"{what} must be str or bytes, got {type(value).__name__}")


#: Input and output caps of a run (snake_case keyword -> wire field), for the ``caps`` mapping. Inputs
#: past a cap are refused before the run (RequestTooLargeError); output files past one end it as
#: "output_limit".
CAP_FIELDS: dict[str, str] = {
    name: RUN_FIELDS[name].wire
    for name in ("max_stdin_bytes", "max_input_file_bytes", "max_input_bytes", "max_output_file_bytes", "max_output_files_total_bytes")
}


def _int(value: Any, name: str, unit: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequestError(f"{name} must be an int number of {unit}, got {value!r}")
    return value


def _encode_field(name: str, field: Field, value: Any) -> Any:
    """One keyword's value in its wire form. Only types are checked: ranges are the host's to judge."""
    kind = field.kind
    if kind == "integer":
        return _int(value, name, field.unit)
    if kind == "string":
        if not isinstance(value, str):
            raise InvalidRequestError(f"{name} must be a str, got {type(value).__name__}")
        return value
    if kind == "strings":
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or not all(isinstance(a, str) for a in value):
            what = " (the program's sys.argv[1:])" if name == "argv" else ""
            raise InvalidRequestError(f"{name} must be a list of str{what}")
        return list(value)
    if kind == "string-map":
        if not isinstance(value, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
            what = " (the guest's whole environment)" if name == "env" else ""
            raise InvalidRequestError(f"{name} must be a mapping of str -> str{what}")
        return dict(value)
    if kind == "content":
        return _content(value, name)
    if kind == "content-map":
        if not isinstance(value, Mapping):
            raise InvalidRequestError(f"{name} must be a mapping of sandbox path -> str or bytes, got {type(value).__name__}")
        encoded: dict[str, Any] = {}
        for path, content in value.items():
            if not isinstance(path, str):
                raise InvalidRequestError(f"{name} paths must be str, got {path!r}")
            encoded[path] = _content(content, f"{name}[{path!r}]")
        return encoded
    if kind == "bytes":
        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise InvalidRequestError(f"{name} must be bytes, got {type(value).__name__}")
        return {"encoding": "base64", "content": base64.b64encode(bytes(value)).decode("ascii")}
    return value  # a field this client has no special form for goes as the JSON value given


def encode_run_request(
    id: str | int,
    *,
    stream: bool = False,
    tools: Sequence[str] = (),
    caps: Mapping[str, int | None] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """The JSON object for one run. ``id`` comes first so the host can name it even in a line it refuses.

    ``fields``: the run's keywords (``code``, ``entry_path``, ``files``, ``timeout_ms``, ... every
    field of the host's schema in snake_case, see _schema.RUN_FIELDS); None means absent.
    ``caps``: more of them, as a mapping (the input and output caps). ``tools``: names of the host
    functions the guest may call (answered by the client).
    """
    for name, value in (caps or {}).items():
        if name not in CAP_FIELDS:
            raise InvalidRequestError(f"unknown cap {name!r}; caps are {', '.join(CAP_FIELDS)}")
        fields.setdefault(name, value)
    if fields.get("code") is None and fields.get("entry_path") is None and fields.get("wasm") is None:
        raise InvalidRequestError("give code (a str) or entry_path (a path among files)")
    fields.setdefault("language", "python")
    request: dict[str, Any] = {"id": id}
    for name, value in fields.items():
        field = RUN_FIELDS.get(name)
        if field is None:
            raise InvalidRequestError(f"unknown run option {name!r}; options are {', '.join(RUN_FIELDS)}")
        if value is not None:
            request[field.wire] = _encode_field(name, field, value)
    if stream:
        request["stream"] = True
    if tools:
        request["tools"] = list(tools)
    return request


def encode_session_open(id: str | int, *, tools: Sequence[str] = (), restore: Any = None, **options: Any) -> dict[str, Any]:
    """``session.open``: an interpreter of its own whose state carries over between runs.

    ``options``: the session's fields in snake_case (``idle_timeout_ms``, ``max_lifetime_ms``,
    ``language``: see _schema.SESSION_FIELDS); None means absent. ``restore``: a saved session's
    bytes (``Session.save()``) to continue, sent as base64 text (last, so the small fields come
    first in the line).
    """
    request: dict[str, Any] = {"id": id, "op": "session.open"}
    if tools:
        request["tools"] = list(tools)
    for name, value in options.items():
        field = SESSION_FIELDS.get(name)
        if field is None or name == "tools":
            raise InvalidRequestError(f"unknown session option {name!r}; options are {', '.join(n for n in SESSION_FIELDS if n != 'tools')}, restore")
        if value is not None:
            request[field.wire] = _encode_field(name, field, value)
    if restore is not None:
        if not isinstance(restore, (bytes, bytearray, memoryview)):
            raise InvalidRequestError(f"restore must be bytes (what Session.save() returned), got {type(restore).__name__}")
        request["restore"] = base64.b64encode(restore).decode("ascii")
    return request


def encode_session_run(session_id: str, run: Mapping[str, Any]) -> dict[str, Any]:
    """``session.run``: a run request (from encode_run_request) sent to a session's interpreter."""
    request: dict[str, Any] = {"id": run["id"], "op": "session.run", "sessionId": session_id}
    request.update((key, value) for key, value in run.items() if key != "id")
    return request


def encode_session_close(id: str | int, session_id: str) -> dict[str, Any]:
    return {"id": id, "op": "session.close", "sessionId": session_id}


def encode_session_save(id: str | int, session_id: str) -> dict[str, Any]:
    """``session.save``: the session's state as a blob; the session goes on."""
    return {"id": id, "op": "session.save", "sessionId": session_id}


def encode_session_fork(id: str | int, session_id: str, count: int) -> dict[str, Any]:
    """``session.fork``: ``count`` new sessions, each starting from the session's state now."""
    if isinstance(count, bool) or not isinstance(count, int):
        raise InvalidRequestError(f"the fork count must be an int, got {count!r}")
    return {"id": id, "op": "session.fork", "sessionId": session_id, "count": count}


def encode_session_files(session_id: str, op: str, **fields: Any) -> dict[str, Any]:
    """``session.files.list`` / ``.read`` / ``.write``: file access between runs, no code run."""
    return {"id": 0, "op": f"session.files.{op}", "sessionId": session_id, **fields}


def encode_line(message: Mapping[str, Any]) -> bytes:
    """One request line. ASCII-only JSON, so no line separator can appear inside it."""
    return (json.dumps(message, ensure_ascii=True, separators=(",", ":")) + "\n").encode("ascii")


def line_bytes(message: Mapping[str, Any]) -> int:
    """The length of ``encode_line(message)`` without its newline: what the host compares with its
    ``--max-request-bytes``. A ``restore`` field (large) is counted, not copied."""
    restore = message.get("restore")
    if not isinstance(restore, str):
        return len(encode_line(message)) - 1
    rest = {key: value for key, value in message.items() if key != "restore"}
    return len(encode_line(rest)) - 1 + len(',"restore":""') + len(restore)


def is_final_reply(message: Mapping[str, Any]) -> bool:
    """Whether a message ends its request (a result or an error), as opposed to an event."""
    return "event" not in message


def decode_reply(message: Mapping[str, Any]) -> RunResult:
    """A final reply to a run: the RunResult, or the host error it carries raised as WasmboxError."""
    if "status" in message:
        return RunResult.from_wire(message)
    if "error" in message:
        raise error_from_wire(message["error"])
    raise ProtocolError(f"host sent a reply that is neither a result nor an error: {dict(message)!r}")


def decode_session_opened(message: Mapping[str, Any]) -> str:
    """The final reply to ``session.open``: the new session's id, or the host error it carries raised."""
    session_id = message.get("sessionId")
    if isinstance(session_id, str):
        return session_id
    if "error" in message:
        raise error_from_wire(message["error"])
    raise ProtocolError(f"host sent a reply to session.open without a sessionId: {dict(message)!r}")


def decode_session_saved(message: Mapping[str, Any]) -> bytes:
    """The final reply to ``session.save``: the blob's bytes, or the host error it carries raised."""
    if "error" in message:
        raise error_from_wire(message["error"])
    blob = message.get("blob")
    if message.get("encoding") != "base64" or not isinstance(blob, str):
        raise ProtocolError(f"host sent a reply to session.save without a base64 blob: {_shown(message)}")
    try:
        data = base64.b64decode(blob, validate=True)
    except ValueError as cause:
        raise ProtocolError(f"host sent a session.save blob that is not base64: {cause}") from None
    size = message.get("bytes")
    if size is not None and size != len(data):
        raise ProtocolError(f"host said the saved session has {size!r} bytes, but its blob has {len(data)}")
    return data


def decode_session_forked(message: Mapping[str, Any]) -> list[str]:
    """The final reply to ``session.fork``: the new sessions' ids, or the host error it carries raised."""
    if "error" in message:
        raise error_from_wire(message["error"])
    ids = message.get("sessionIds")
    if not isinstance(ids, list) or not ids or not all(isinstance(one, str) for one in ids):
        raise ProtocolError(f"host sent a reply to session.fork without sessionIds: {_shown(message)}")
    return list(ids)


def _shown(message: Mapping[str, Any]) -> str:
    """A reply for an error message, with long fields cut (a blob may be hundreds of MB)."""
    return repr({key: (value[:60] + "...") if isinstance(value, str) and len(value) > 80 else value for key, value in message.items()})
