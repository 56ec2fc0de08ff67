"""wasmbox: run untrusted Python in a zero-permission WebAssembly sandbox, from Python.

    from wasmbox import run_code
    print(run_code("print(1 + 1)").stdout)

A thin client of the wasmbox host (TypeScript, bundled in this package), which it runs on Deno
(from the PyPI ``deno`` package) and talks to over ``serve --stdio`` JSON lines. Node.js is not
needed. Each run gets a fresh Pyodide interpreter in its own zero-permission Deno executor; a
session keeps one interpreter across runs; host functions (``tools``) let the guest call back.
"""

from ._errors import (
    AbortedError,
    ERROR_CODES,
    DenoNotFoundError,
    ExecutorStartFailedError,
    GuestRaisedError,
    HostExitedError,
    InternalError,
    InvalidPathError,
    InvalidRequestError,
    MemoryLimitExceededError,
    OutputLimitExceededError,
    ProtocolError,
    RequestTooLargeError,
    RunCancelledError,
    RunCrashedError,
    RunFailedError,
    RunTimeoutError,
    SandboxClosedError,
    SandboxLayerMissingError,
    SessionClosedError,
    SessionDeadError,
    SessionNotFoundError,
    SessionNotSaveableError,
    InvalidSessionBlobError,
    SessionBlobIncompatibleError,
    SnapshotFailedError,
    CacheUnwritableError,
    TooManySessionsError,
    PackageNotFoundError,
    PackageInvalidError,
    UnknownOpError,
    UnsupportedLanguageError,
    WasmboxError,
)
from ._result import RUN_STATUSES, GuestError, RichResult, RunResult, RunStatus
from ._sandbox import AsyncSandbox, Sandbox, run_code, run_fs
from ._session import AsyncSession, AsyncSessionFiles, AsyncSessionOpening, Session, SessionFile, SessionFiles
from ._tools import HostFunction

__version__ = "0.1.0"

__all__ = [
    "run_code",
    "run_fs",
    "Sandbox",
    "AsyncSandbox",
    "Session",
    "AsyncSession",
    "AsyncSessionOpening",
    "SessionFile",
    "SessionFiles",
    "AsyncSessionFiles",
    "HostFunction",
    "RunResult",
    "RunStatus",
    "RUN_STATUSES",
    "GuestError",
    "RichResult",
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
    "RunFailedError",
    "GuestRaisedError",
    "RunTimeoutError",
    "MemoryLimitExceededError",
    "OutputLimitExceededError",
    "RunCrashedError",
    "RunCancelledError",
]
