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

__all__ = [
    "FileContent",
    "encode_run_request",
    "encode_session_open",
    "encode_session_run",
    "encode_session_close",
    "encode_line",
    "decode_reply",
    "decode_session_opened",
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


#: Input and output caps of a run (snake_case keyword -> wire field). Inputs past a cap are refused
#: before the run (RequestTooLargeError); output files past one end it as "output_limit".
CAP_FIELDS: dict[str, str] = {
    "max_stdin_bytes": "maxStdinBytes",
    "max_input_file_bytes": "maxInputFileBytes",
    "max_input_bytes": "maxInputBytes",
    "max_output_file_bytes": "maxOutputFileBytes",
    "max_output_files_total_bytes": "maxOutputFilesTotalBytes",
}


def _int(value: Any, name: str, unit: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequestError(f"{name} must be an int number of {unit}, got {value!r}")
    return value


def encode_run_request(
    id: str | int,
    *,
    code: str | None = None,
    entry_path: str | None = None,
    language: str = "python",
    files: Mapping[str, FileContent] | None = None,
    stdin: str | bytes | bytearray | memoryview | None = None,
    argv: Sequence[str] | None = None,
    env: Mapping[str, str] | None = None,
    timeout_ms: int | None = None,
    memory_limit_bytes: int | None = None,
    max_output_bytes: int | None = None,
    stream: bool = False,
    tools: Sequence[str] = (),
    caps: Mapping[str, int | None] | None = None,
) -> dict[str, Any]:
    """The JSON object for one run. ``id`` comes first so the host can name it even in a line it refuses.

    ``tools``: names of the host functions the guest may call (answered by the client).
    """
    request: dict[str, Any] = {"id": id}
    if code is not None:
        if not isinstance(code, str):
            raise InvalidRequestError(f"code must be a str, got {type(code).__name__}")
        request["code"] = code
    if entry_path is not None:
        if not isinstance(entry_path, str):
            raise InvalidRequestError(f"entry_path must be a str, got {type(entry_path).__name__}")
        request["entryPath"] = entry_path
    if code is None and entry_path is None:
        raise InvalidRequestError("give code (a str) or entry_path (a path among files)")
    if not isinstance(language, str):
        raise InvalidRequestError(f"language must be a str, got {type(language).__name__}")
    request["language"] = language
    if files is not None:
        if not isinstance(files, Mapping):
            raise InvalidRequestError(f"files must be a mapping of sandbox path -> str or bytes, got {type(files).__name__}")
        encoded: dict[str, Any] = {}
        for path, content in files.items():
            if not isinstance(path, str):
                raise InvalidRequestError(f"file paths must be str, got {path!r}")
            encoded[path] = _content(content, f"files[{path!r}]")
        request["files"] = encoded
    if stdin is not None:
        request["stdin"] = _content(stdin, "stdin")
    if argv is not None:
        if isinstance(argv, (str, bytes)) or not isinstance(argv, Sequence) or not all(isinstance(a, str) for a in argv):
            raise InvalidRequestError("argv must be a list of str (the program's sys.argv[1:])")
        request["argv"] = list(argv)
    if env is not None:
        if not isinstance(env, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items()):
            raise InvalidRequestError("env must be a mapping of str -> str (the guest's whole environment)")
        request["env"] = dict(env)
    if timeout_ms is not None:
        request["timeoutMs"] = _int(timeout_ms, "timeout_ms", "milliseconds")
    if memory_limit_bytes is not None:
        request["memoryLimitBytes"] = _int(memory_limit_bytes, "memory_limit_bytes", "bytes")
    if max_output_bytes is not None:
        request["maxOutputBytes"] = _int(max_output_bytes, "max_output_bytes", "bytes")
    for name, value in (caps or {}).items():
        if name not in CAP_FIELDS:
            raise InvalidRequestError(f"unknown cap {name!r}; caps are {', '.join(CAP_FIELDS)}")
        if value is not None:
            request[CAP_FIELDS[name]] = _int(value, name, "bytes")
    if stream:
        request["stream"] = True
    if tools:
        request["tools"] = list(tools)
    return request


def encode_session_open(
    id: str | int,
    *,
    tools: Sequence[str] = (),
    idle_timeout_ms: int | None = None,
    max_lifetime_ms: int | None = None,
) -> dict[str, Any]:
    """``session.open``: a Python interpreter of its own whose state carries over between runs."""
    request: dict[str, Any] = {"id": id, "op": "session.open"}
    if tools:
        request["tools"] = list(tools)
    if idle_timeout_ms is not None:
        request["idleTimeoutMs"] = _int(idle_timeout_ms, "idle_timeout_ms", "milliseconds")
    if max_lifetime_ms is not None:
        request["maxLifetimeMs"] = _int(max_lifetime_ms, "max_lifetime_ms", "milliseconds")
    return request


def encode_session_run(session_id: str, run: Mapping[str, Any]) -> dict[str, Any]:
    """``session.run``: a run request (from encode_run_request) sent to a session's interpreter."""
    request: dict[str, Any] = {"id": run["id"], "op": "session.run", "sessionId": session_id}
    request.update((key, value) for key, value in run.items() if key != "id")
    return request


def encode_session_close(id: str | int, session_id: str) -> dict[str, Any]:
    return {"id": id, "op": "session.close", "sessionId": session_id}


def encode_session_files(session_id: str, op: str, **fields: Any) -> dict[str, Any]:
    """``session.files.list`` / ``.read`` / ``.write``: file access between runs, no code run."""
    return {"id": 0, "op": f"session.files.{op}", "sessionId": session_id, **fields}


def encode_line(message: Mapping[str, Any]) -> bytes:
    """One request line. ASCII-only JSON, so no line separator can appear inside it."""
    return (json.dumps(message, ensure_ascii=True, separators=(",", ":")) + "\n").encode("ascii")


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
