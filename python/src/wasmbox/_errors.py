"""Host failures (WasmboxError, with the TypeScript side's codes) and non-ok run outcomes (RunFailedError)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._result import RunResult

__all__ = [
    "WasmboxError",
    "InvalidRequestError",
    "InvalidPathError",
    "RequestTooLargeError",
    "UnsupportedLanguageError",
    "DenoNotFoundError",
    "ExecutorStartFailedError",
    "SnapshotFailedError",
    "CacheUnwritableError",
    "SandboxLayerMissingError",
    "SandboxClosedError",
    "AbortedError",
    "UnknownOpError",
    "SessionClosedError",
    "SessionDeadError",
    "SessionNotFoundError",
    "SessionNotSaveableError",
    "InvalidSessionBlobError",
    "SessionBlobIncompatibleError",
    "TooManySessionsError",
    "PackageNotFoundError",
    "PackageInvalidError",
    "InternalError",
    "ERROR_CODES",
    "HostExitedError",
    "ProtocolError",
    "error_from_wire",
    "RunFailedError",
    "GuestRaisedError",
    "RunTimeoutError",
    "MemoryLimitExceededError",
    "OutputLimitExceededError",
    "RunCrashedError",
    "RunCancelledError",
]


class WasmboxError(Exception):
    """Something went wrong in wasmbox or in how it was called, not in the guest.

    ``code`` is one of the SCREAMING_SNAKE strings of ``src/core/errors.ts`` (identical in
    TypeScript, HTTP bodies and here); match on it or on the subclass, never on the message.
    """

    code: str = "INTERNAL_ERROR"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return f"{self.message} [{self.code}]"

    def to_wire(self) -> dict[str, str]:
        """The form errors take when they cross a process boundary."""
        return {"code": self.code, "name": type(self).__name__, "message": self.message}


class InvalidRequestError(WasmboxError, ValueError):
    """The request was refused before it ran: a bad argument, a missing field, a value out of range."""

    code = "INVALID_REQUEST"


class InvalidPathError(InvalidRequestError):
    """A file path is absolute, climbs out with "..", is empty, or holds a NUL or backslash."""

    code = "INVALID_PATH"


class RequestTooLargeError(InvalidRequestError):
    """The request is larger than the host accepts: an input past its cap (``max_stdin_bytes``,
    ``max_input_file_bytes``, ``max_input_bytes``; the message names it), or the encoded request
    past ``max_request_bytes`` (default 512 MiB, the longest line the host can hold)."""

    code = "REQUEST_TOO_LARGE"


class UnsupportedLanguageError(InvalidRequestError):
    code = "UNSUPPORTED_LANGUAGE"


class DenoNotFoundError(WasmboxError):
    """No Deno binary: install the ``deno`` package from PyPI or set WASMBOX_DENO."""

    code = "DENO_NOT_FOUND"


class ExecutorStartFailedError(WasmboxError):
    """The host or its executors could not start."""

    code = "EXECUTOR_START_FAILED"


class SnapshotFailedError(WasmboxError):
    code = "SNAPSHOT_FAILED"


class CacheUnwritableError(WasmboxError):
    """Neither the cache directory nor a temporary one can be written: set WASMBOX_CACHE_DIR."""

    code = "CACHE_UNWRITABLE"


class SandboxLayerMissingError(WasmboxError):
    """``os_sandbox="require"`` was asked for and bubblewrap cannot run here."""

    code = "SANDBOX_LAYER_MISSING"


class SandboxClosedError(WasmboxError):
    """The sandbox was used after ``close()``, or closed while a run was in flight."""

    code = "SANDBOX_CLOSED"


class AbortedError(WasmboxError):
    """The caller gave up (an aborted signal on the TypeScript side) before the work started."""

    code = "ABORTED"


class UnknownOpError(WasmboxError):
    """The host does not know the request's ``op`` (an older host than this client)."""

    code = "UNKNOWN_OP"


class SessionClosedError(WasmboxError):
    """The session was closed: by ``close()``, with its sandbox, or by the host's idle or lifetime limit."""

    code = "SESSION_CLOSED"


class SessionDeadError(WasmboxError):
    """The session's interpreter is gone: a run had to be killed (it ignored the timeout's
    KeyboardInterrupt, was cancelled, or crashed), or the host process holding it exited. Open a new one."""

    code = "SESSION_DEAD"


class SessionNotFoundError(WasmboxError):
    """The host has no session with that id (it forgot a long-closed one)."""

    code = "SESSION_NOT_FOUND"


class SessionNotSaveableError(WasmboxError):
    """``Session.save()`` or ``fork()`` found state that cannot be carried to another interpreter: a
    JavaScript object Python holds (a ``js``/``pyodide.ffi`` proxy kept in a variable), a shared
    library loaded after the interpreter started, a special file. The message names it; delete it
    (``del name``) and save again. The session goes on."""

    code = "SESSION_NOT_SAVEABLE"


class InvalidSessionBlobError(InvalidRequestError):
    """``session(restore=blob)`` got bytes that are not a usable saved session: not a blob at all,
    truncated, damaged (its checksum does not match), or a state the interpreter refuses."""

    code = "INVALID_SESSION_BLOB"


class SessionBlobIncompatibleError(InvalidRequestError):
    """A well-formed saved session that this host cannot continue: saved in another blob format, or
    by another wasmbox version, Pyodide or package set than the restoring sandbox has, or against a
    Python memory snapshot with other bytes (one made on another machine). Restore it with the
    wasmbox version and packages that saved it (and, on another machine, the saving machine's
    snapshot, copied from its WASMBOX_CACHE_DIR); the message says which differs."""

    code = "SESSION_BLOB_INCOMPATIBLE"


class TooManySessionsError(WasmboxError):
    """The host holds as many open sessions as it allows; close one first."""

    code = "TOO_MANY_SESSIONS"


class PackageNotFoundError(InvalidRequestError):
    """A package the request names is not in the host's wheelhouse; the message names the command that adds it."""

    code = "PACKAGE_NOT_FOUND"


class PackageInvalidError(WasmboxError):
    """A package cannot be used: a damaged wheel, one that raises on import, two that install the same file."""

    code = "PACKAGE_INVALID"


class InternalError(WasmboxError):
    code = "INTERNAL_ERROR"


class HostExitedError(InternalError):
    """The host process died while a run was in flight. The next run starts a new one."""


class ProtocolError(InternalError):
    """The host sent something that is not the wire protocol; the client gave up on it."""


_BY_CODE: dict[str, type[WasmboxError]] = {
    cls.code: cls
    for cls in (
        InvalidRequestError,
        InvalidPathError,
        RequestTooLargeError,
        UnsupportedLanguageError,
        DenoNotFoundError,
        ExecutorStartFailedError,
        SnapshotFailedError,
        CacheUnwritableError,
        SandboxLayerMissingError,
        SandboxClosedError,
        AbortedError,
        UnknownOpError,
        SessionClosedError,
        SessionDeadError,
        SessionNotFoundError,
        SessionNotSaveableError,
        InvalidSessionBlobError,
        SessionBlobIncompatibleError,
        TooManySessionsError,
        PackageNotFoundError,
        PackageInvalidError,
        InternalError,
    )
}

#: Every host error code, as in src/core/errors.ts (a test compares the two). Codes that only the
#: HTTP edge uses have no subclass here: they arrive as WasmboxError with their code.
ERROR_CODES: tuple[str, ...] = (
    *_BY_CODE,
    "UNAUTHORIZED",
    "FORBIDDEN",
    "NOT_FOUND",
    "METHOD_NOT_ALLOWED",
    "UNSUPPORTED_MEDIA_TYPE",
    "QUEUE_FULL",
    # A feature this host or platform lacks (e.g. saving a session of a language other than
    # Python, cpu_time_ms off Linux): a plain WasmboxError with this code.
    "NOT_IMPLEMENTED",
    # `wasmbox packages add` could not reach the package index (the CLI, not a run).
    "PACKAGE_DOWNLOAD_FAILED",
)


def error_from_wire(error: Any) -> WasmboxError:
    """Rebuilds a host error from its wire form ``{"code", "message"}``; unknown codes keep their code."""
    if not isinstance(error, dict):
        return ProtocolError(f"host sent an error that is not an object: {error!r}")
    code = error.get("code")
    message = error.get("message")
    if not isinstance(code, str) or not isinstance(message, str):
        return ProtocolError(f"host sent a malformed error: {error!r}")
    cls = _BY_CODE.get(code, WasmboxError)
    return cls(message, code=code)


class RunFailedError(Exception):
    """Raised by ``RunResult.raise_for_status()`` for a run whose status is not "ok".

    This is about what the guest did (data), not a host failure: ``result`` holds everything.
    """

    def __init__(self, result: "RunResult") -> None:
        self.result = result
        error = result.error
        detail = f"{error.type}: {error.message}" if error else ""
        super().__init__(f"run ended with status {result.status!r}" + (f" ({detail})" if detail else ""))

    @property
    def status(self) -> str:
        return self.result.status


class GuestRaisedError(RunFailedError):
    """Status "error": an uncaught exception or a non-zero ``sys.exit``."""


class RunTimeoutError(RunFailedError, TimeoutError):
    """Status "timeout": the run exceeded ``timeout_ms``."""


class MemoryLimitExceededError(RunFailedError):
    """Status "memory_limit": the run exceeded ``memory_limit_bytes``."""


class OutputLimitExceededError(RunFailedError):
    """Status "output_limit": stdout + stderr exceeded ``max_output_bytes``."""


class RunCrashedError(RunFailedError):
    """Status "crash": the executor died or misbehaved."""


class RunCancelledError(RunFailedError):
    """Status "cancelled"."""


RUN_FAILED_BY_STATUS: dict[str, type[RunFailedError]] = {
    "error": GuestRaisedError,
    "timeout": RunTimeoutError,
    "memory_limit": MemoryLimitExceededError,
    "output_limit": OutputLimitExceededError,
    "crash": RunCrashedError,
    "cancelled": RunCancelledError,
}
