"""Sandbox / AsyncSandbox (one host process each, started lazily) and the one-call run_code / run_fs."""

from __future__ import annotations

import asyncio
import itertools
import os
import threading
import weakref
from typing import Any, Awaitable, Callable, Mapping, Sequence, Union

from ._connection import Connection, NotSent, Sink
from ._errors import HostExitedError, RequestTooLargeError, SandboxClosedError
from ._result import RunResult
from ._runs import build_run_request, run_fields, open_session_async, open_session_sync, run_async, run_sync
from ._runtime import HostRuntime, find_runtime
from ._session import AsyncSession, AsyncSessionOpening, Session, _SessionState
from ._tools import HostFunction, check_tools
from ._schema import SESSION_FIELDS
from ._wire import FileContent, encode_session_open, line_bytes

__all__ = ["Sandbox", "AsyncSandbox", "run_code", "run_fs"]

OutputCallback = Callable[[str], Any]
_OS_SANDBOX_MODES = ("auto", "require", "off")
#: The longest request line the host can hold: it reads each line into one JavaScript string, and
#: V8 makes none longer than 2**29 - 24 characters (node:buffer's MAX_STRING_LENGTH; the lines are
#: ASCII, so characters are bytes). A longer line would not be refused but crash the host, so
#: ``max_request_bytes`` is capped here.
_HOST_MAX_LINE_BYTES = 2**29 - 24
#: The largest request line of the host this client starts (the host's own default is 8 MiB,
#: DEFAULT_MAX_REQUEST_BYTES in src/core/limits.ts). That host is its own, on a private pipe, so
#: its cap is the most a line can be: it carries the run's input caps (up to 1 GiB, as base64 in
#: one line, would not fit anyway) and any saved session the host can send back, since the host's
#: ``session.save`` reply is itself one such line (a blob of up to about 384 MiB).
_DEFAULT_MAX_REQUEST_BYTES = _HOST_MAX_LINE_BYTES
#: How long interpreter exit (or garbage collection of an unclosed sandbox) waits for runs in flight.
_EXIT_GRACE_S = 3.0


class _Core:
    """What a Sandbox holds: options, the current host connection, request ids. Shared by both APIs."""

    def __init__(self, args: list[str], deno: str | None, host_env: Mapping[str, str] | None, max_request_bytes: int | None) -> None:
        self._args = args
        #: Host-function answers and restored sessions longer than this would be refused by the host.
        self.max_request_bytes = min(max_request_bytes or _DEFAULT_MAX_REQUEST_BYTES, _HOST_MAX_LINE_BYTES)
        self._deno = deno
        self._host_env = dict(host_env) if host_env is not None else None
        self._lock = threading.Lock()
        self._conn: Connection | None = None
        self._runtime: HostRuntime | None = None
        self._ids = itertools.count(1)
        self.closed = False
        _cores.add(self)

    def _after_fork_in_child(self) -> None:
        # The host and its pipes belong to the parent, and no reader thread survived the fork:
        # forget them (without touching the parent's host); this process starts its own on use.
        self._lock = threading.Lock()
        self._conn = None

    @property
    def host_pid(self) -> int | None:
        conn = self._conn
        return conn.pid if conn is not None and conn.alive else None

    def connection(self) -> Connection:
        """The live host connection, starting a host when there is none or the last one died."""
        with self._lock:
            if self.closed:
                raise SandboxClosedError("the sandbox is closed")
            if self._conn is None or not self._conn.alive:
                if self._runtime is None:
                    self._runtime = find_runtime(self._deno)
                self._conn = Connection(self._runtime, self._args, self._runtime.env(self._host_env))
            return self._conn

    def next_id(self) -> int:
        return next(self._ids)

    def submit(self, request: dict[str, Any], sink: Sink) -> tuple[Connection, Any]:
        """Sends a request with a fresh id. When the host had died unnoticed (it never saw the
        request), retries once on a new host; a host that fails to start raises why."""
        for attempt in range(2):
            try:
                return self.submit_on(self.connection(), request, sink)
            except NotSent as not_sent:
                if attempt == 1 or type(not_sent.error) is not HostExitedError:
                    raise not_sent.error from None
        raise AssertionError("unreachable")

    def submit_on(self, conn: Connection, request: dict[str, Any], sink: Sink) -> tuple[Connection, Any]:
        """Sends a request with a fresh id on one given host (a session's). Raises NotSent."""
        request["id"] = self.next_id()
        conn.submit(request, sink)
        return conn, request["id"]

    def close(self, timeout_s: float | None) -> None:
        with self._lock:
            if self.closed:
                return
            self.closed = True
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close(timeout_s)

    def kill_host(self) -> None:
        """Stops the current host at once (the next run starts a new one). For tests and recovery."""
        with self._lock:
            conn = self._conn
        if conn is not None:
            conn.kill()


_cores: "weakref.WeakSet[_Core]" = weakref.WeakSet()


def _after_fork_in_child() -> None:
    global _default_lock
    _default_lock = threading.Lock()
    for core in list(_cores):
        core._after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


_ISOLATION_MODES = ("process", "isolate", "interpreter")


def _check_options(pool_size: int | None, os_sandbox: str, max_request_bytes: int | None, isolation: str = "process") -> list[str]:
    args: list[str] = []
    if isolation not in _ISOLATION_MODES:
        raise ValueError(f"isolation must be one of {', '.join(_ISOLATION_MODES)}, got {isolation!r}")
    args += ["--isolation", isolation]
    if pool_size is not None:
        if isinstance(pool_size, bool) or not isinstance(pool_size, int) or pool_size < 0:
            raise ValueError(f"pool_size must be an int >= 0, got {pool_size!r}")
        args += ["--pool", str(pool_size)]
    if os_sandbox not in _OS_SANDBOX_MODES:
        raise ValueError(f"os_sandbox must be one of {', '.join(_OS_SANDBOX_MODES)}, got {os_sandbox!r}")
    args += ["--os-sandbox", os_sandbox]
    if max_request_bytes is not None:
        if isinstance(max_request_bytes, bool) or not isinstance(max_request_bytes, int) or max_request_bytes <= 0:
            raise ValueError(f"max_request_bytes must be an int > 0, got {max_request_bytes!r}")
    args += ["--max-request-bytes", str(min(max_request_bytes or _DEFAULT_MAX_REQUEST_BYTES, _HOST_MAX_LINE_BYTES))]
    return args


def _package_options(packages: Sequence[str] | None, wheelhouse: str | os.PathLike[str] | None) -> list[str]:
    """``--package NAME`` for each package every run gets, and ``--wheelhouse DIR``."""
    if isinstance(packages, (str, bytes)):
        raise ValueError(f"packages must be a list of package names, got the string {packages!r}")
    args: list[str] = []
    for name in packages or ():
        if not isinstance(name, str) or not name.strip() or "," in name:
            raise ValueError(f"packages: {name!r} is not a package name")
        args += ["--package", name.strip()]
    if wheelhouse is not None:
        args += ["--wheelhouse", os.fspath(wheelhouse)]
    return args


def _timeout_s(timeout_ms: int | None) -> float | None:
    if timeout_ms is None:
        return None
    if isinstance(timeout_ms, bool) or not isinstance(timeout_ms, int) or timeout_ms < 0:
        raise ValueError(f"timeout_ms must be an int >= 0 or None, got {timeout_ms!r}")
    return timeout_ms / 1000


class _SandboxBase:
    def __init__(
        self,
        *,
        pool_size: int | None = None,
        os_sandbox: str = "auto",
        max_request_bytes: int | None = None,
        deno: str | os.PathLike[str] | None = None,
        host_env: Mapping[str, str] | None = None,
        isolation: str = "process",
        packages: Sequence[str] | None = None,
        wheelhouse: str | os.PathLike[str] | None = None,
    ) -> None:
        args = _check_options(pool_size, os_sandbox, max_request_bytes, isolation)
        args += _package_options(packages, wheelhouse)
        self._core = _Core(args, os.fspath(deno) if deno is not None else None, host_env, max_request_bytes)
        # Stops the host when the sandbox is garbage-collected unclosed, or at interpreter exit.
        self._finalizer = weakref.finalize(self, self._core.close, _EXIT_GRACE_S)

    @property
    def host_pid(self) -> int | None:
        """Process id of the running host (`deno … serve --stdio`), or None when none runs."""
        return self._core.host_pid

    @property
    def closed(self) -> bool:
        return self._core.closed

    def kill_host(self) -> None:
        """Kills the host process now; runs in flight fail, and the next run starts a new host."""
        self._core.kill_host()


def _session_request(core: _Core, tools: Mapping[str, HostFunction], arguments: Mapping[str, Any]) -> dict[str, Any]:
    """``session.open`` from a ``session`` method's arguments (its ``locals()``): every option the
    host's schema names, and ``restore``. A restore too long for the host's request line is refused
    here, before hundreds of megabytes go down the pipe to be refused there."""
    options = {name: arguments[name] for name in SESSION_FIELDS if name in arguments and name != "tools"}
    restore = arguments.get("restore")
    request = encode_session_open(0, tools=list(tools), restore=restore, **options)
    if restore is not None:
        size = line_bytes(request) + 12  # room for the id the request is sent with
        if size > core.max_request_bytes:
            raise RequestTooLargeError(
                f"restoring this saved session ({len(restore)} bytes) takes a request line of {size} bytes, "
                f"more than the host accepts (max_request_bytes={core.max_request_bytes})"
                + ("" if core.max_request_bytes >= _HOST_MAX_LINE_BYTES else "; pass a larger max_request_bytes to the Sandbox")
            )
    return request


def _session_language(language: str | None, restore: Any) -> str | None:
    """The language a session's runs name: the one given, else Python, else (restoring) none, so
    that the host runs them in the saved session's own."""
    if language is not None:
        return language
    return "python" if restore is None else None


class Sandbox(_SandboxBase):
    """Runs untrusted code; each run gets a fresh interpreter in its own zero-permission executor.

    Holds one host process (Deno running wasmbox's ``serve --stdio``) and its pool of warm
    executors. The constructor does no I/O; the host starts on ``start()``, on entering ``with``,
    or on the first run, and is started again if it dies. Safe to use from many threads at once.
    ``session()`` opens a Session, an interpreter whose state carries over between runs (and
    ``session(restore=blob)`` continues one saved with ``Session.save()``).

    Options: ``pool_size`` executors kept loaded ahead of demand (host default 2);
    ``os_sandbox`` "auto" (bubblewrap when it works), "require" or "off"; ``max_request_bytes``
    largest accepted request line (default and most: 2**29 - 24 bytes, just under 512 MiB, the
    longest line the host can hold; it bounds host-function answers and restored sessions);
    ``deno`` the Deno binary (default: the PyPI
    ``deno`` package, else WASMBOX_DENO, else PATH); ``host_env`` the host's environment
    (default: this process's; guests never see it); ``isolation`` "process" (default: a fresh
    executor process per run), "isolate" (each run in a fresh V8 isolate and wasm instance inside
    a long-lived executor process: about twice the throughput, same guarantees between runs) or
    "interpreter" (one interpreter reset between runs: fastest, but no boundary between runs, for
    code you trust; see the README's "Isolation modes"); ``packages`` Python packages from the
    wheelhouse every run gets, imported ahead (add them with ``wasmbox packages add NAME``; a run's
    own ``packages=`` add to them); ``wheelhouse`` its directory (default: WASMBOX_WHEELHOUSE, else
    the cache dir's ``wheelhouse``).
    """

    def start(self) -> "Sandbox":
        """Starts the host now, so its snapshot and warm pool are ready sooner. Returns self."""
        self._core.connection()
        return self

    def __enter__(self) -> "Sandbox":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self, *, timeout_ms: int | None = None) -> None:
        """Lets runs in flight finish, then stops the host and its executors. Idempotent.

        ``timeout_ms``: how long to wait for runs in flight before killing them (default: as long
        as they take, which their own ``timeout_ms`` bounds).
        """
        self._core.close(_timeout_s(timeout_ms))
        self._finalizer.detach()

    def run(
        self,
        code: str | None = None,
        *,
        entry_path: str | None = None,
        language: str = "python",
        wasm: bytes | None = None,
        files: Mapping[str, FileContent] | None = None,
        stdin: Union[str, bytes, None] = None,
        timeout_ms: int | None = None,
        cpu_time_ms: int | None = None,
        memory_limit_bytes: int | None = None,
        max_output_bytes: int | None = None,
        max_stdin_bytes: int | None = None,
        max_input_file_bytes: int | None = None,
        max_input_bytes: int | None = None,
        max_output_file_bytes: int | None = None,
        max_output_files_total_bytes: int | None = None,
        env: Mapping[str, str] | None = None,
        argv: Sequence[str] | None = None,
        packages: Sequence[str] | None = None,
        on_stdout: OutputCallback | None = None,
        on_stderr: OutputCallback | None = None,
        tools: Mapping[str, HostFunction] | None = None,
    ) -> RunResult:
        """Runs ``code`` (or the file ``entry_path`` among ``files``) and returns its RunResult.

        Every guest outcome is a RunResult (check ``.ok`` or call ``.raise_for_status()``); a bad
        request raises InvalidRequestError (or a subclass), a host failure another WasmboxError.

        ``language``: "python" (default), "javascript", "ruby", "c", "cpp", "sqlite", "php", "lua" or
        "wasi" (then ``wasm``: the WASI command module's bytes, or ``entry_path`` naming it in ``files``).
        ``files``: sandbox path (relative to /sandbox) -> str or bytes. ``stdin``: everything the
        program reads (then EOF). ``argv``: sys.argv[1:]. ``env``: the guest's whole environment.
        ``packages``: Python packages from the wheelhouse the run imports (with the sandbox's own),
        e.g. ``["sympy", "pydantic>=2"]``; one not there raises PackageNotFoundError, naming the
        command that adds it, before the run.
        ``timeout_ms`` wall-clock limit (default 30000); ``cpu_time_ms`` CPU-time limit (default
        none): the CPU the run used, read by the host, so the verdict is the same on a loaded
        machine; past it the run ends as "timeout" with ``error.type`` "CpuTimeLimit" (Linux hosts:
        elsewhere the request is refused with code NOT_IMPLEMENTED); ``memory_limit_bytes`` (default
        256 MiB, at least 48 MiB); ``max_output_bytes`` cap on stdout + stderr (default 1 MiB).
        Caps on what the run takes in, refused before it starts (RequestTooLargeError naming the
        cap): ``max_stdin_bytes`` (default 64 MiB), ``max_input_file_bytes`` (each file, 64 MiB),
        ``max_input_bytes`` (stdin, files and code together, 128 MiB), all at most 1 GiB; and on
        the files it gives back, past which it ends as "output_limit": ``max_output_file_bytes``
        (each, 64 MiB) and ``max_output_files_total_bytes`` (together, 128 MiB), at most 256 MiB.
        ``on_stdout`` / ``on_stderr`` are called in this thread with each piece of output as it
        is produced.

        ``tools``: host functions the guest may call, name -> function (``from wasmbox import
        tools; tools.name(key=value)`` in the guest). Each is called on a worker thread with the
        guest's keyword arguments (JSON values) and returns a JSON value; what it raises reaches
        the guest as ``wasmbox.ToolError`` with ``str(exception)`` as the message. The guest waits
        for the answer, and the wait counts against ``timeout_ms``.

        When this call is left before the result (KeyboardInterrupt, an exception raised by a
        callback), the run is cancelled on the host, then the exception goes on.
        """
        own = check_tools(tools, allow_async=False)
        request = build_run_request(run_fields(locals()), on_stdout, on_stderr, own)
        return run_sync(self._core.submit, request, tools=own, max_request_bytes=self._core.max_request_bytes, on_stdout=on_stdout, on_stderr=on_stderr)

    def run_fs(self, entry_path: str, files: Mapping[str, FileContent], **options: Any) -> RunResult:
        """Runs the file ``entry_path`` from ``files``; tracebacks and sys.argv[0] name it. Options as in ``run``."""
        return self.run(entry_path=entry_path, files=files, **options)

    def session(
        self,
        *,
        tools: Mapping[str, HostFunction] | None = None,
        idle_timeout_ms: int | None = None,
        max_lifetime_ms: int | None = None,
        language: str | None = None,
        packages: Sequence[str] | None = None,
        restore: bytes | None = None,
    ) -> Session:
        """Opens a Session: a Python interpreter whose state carries over between its runs.

        ``tools``: host functions every run of the session may call (as in ``run``).
        ``language``: the session's language (default "python"; restoring, the saved session's).
        ``packages``: Python packages from
        the wheelhouse its interpreter has (besides the sandbox's own), fixed when it opens.
        ``idle_timeout_ms``: the host closes the session after this long without a run (default
        10 minutes); ``max_lifetime_ms``: this long after it opened (default 1 hour). Use it in
        ``with``, or call ``close()``: each open session holds an executor process.

        ``restore``: a saved session (the bytes ``Session.save()`` returned, here or in another
        process or machine) to continue: the new session starts with its globals, modules, class
        instances, files and random state. ``language`` and ``packages`` then default to the saved
        session's (give them only to check: others raise InvalidRequestError); ``tools`` must
        name every host function the saved session was opened with, which are bound again by name
        (InvalidRequestError names the missing ones). The restoring sandbox needs the same wasmbox
        version and packages as the one that saved it (else SessionBlobIncompatibleError); bytes
        that are not a saved session, or a truncated or damaged one, raise InvalidSessionBlobError.
        A blob is limited by ``max_request_bytes``: with the default, blobs up to about 384 MiB,
        any the host can save (RequestTooLargeError, raised before sending, past it).
        """
        own = check_tools(tools, allow_async=False)
        conn, session_id = open_session_sync(self._core, _session_request(self._core, own, locals()))
        return Session(_SessionState(self._core, conn, session_id, own, _session_language(language, restore)))


class AsyncSandbox(_SandboxBase):
    """Sandbox for asyncio: ``async with AsyncSandbox() as sb: result = await sb.run("1 + 1")``.

    Same options and semantics as Sandbox; runs from many tasks overlap. ``on_stdout`` /
    ``on_stderr`` run on the event loop and may be coroutine functions; so may ``tools``, which
    are awaited on the loop (plain functions run on a worker thread). Cancelling the task of a run
    cancels the run on the host.
    """

    async def start(self) -> "AsyncSandbox":
        await asyncio.get_running_loop().run_in_executor(None, self._core.connection)
        return self

    async def __aenter__(self) -> "AsyncSandbox":
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self, *, timeout_ms: int | None = None) -> None:
        """Lets runs in flight finish, then stops the host and its executors. Idempotent."""
        timeout_s = _timeout_s(timeout_ms)
        await asyncio.get_running_loop().run_in_executor(None, self._core.close, timeout_s)
        self._finalizer.detach()

    async def run(
        self,
        code: str | None = None,
        *,
        entry_path: str | None = None,
        language: str = "python",
        wasm: bytes | None = None,
        files: Mapping[str, FileContent] | None = None,
        stdin: Union[str, bytes, None] = None,
        timeout_ms: int | None = None,
        cpu_time_ms: int | None = None,
        memory_limit_bytes: int | None = None,
        max_output_bytes: int | None = None,
        max_stdin_bytes: int | None = None,
        max_input_file_bytes: int | None = None,
        max_input_bytes: int | None = None,
        max_output_file_bytes: int | None = None,
        max_output_files_total_bytes: int | None = None,
        env: Mapping[str, str] | None = None,
        argv: Sequence[str] | None = None,
        packages: Sequence[str] | None = None,
        on_stdout: Callable[[str], Union[Any, Awaitable[Any]]] | None = None,
        on_stderr: Callable[[str], Union[Any, Awaitable[Any]]] | None = None,
        tools: Mapping[str, HostFunction] | None = None,
    ) -> RunResult:
        """As ``Sandbox.run``, awaitable; ``tools`` may be coroutine functions."""
        own = check_tools(tools, allow_async=True)
        request = build_run_request(run_fields(locals()), on_stdout, on_stderr, own)
        return await run_async(self._core.submit, request, tools=own, max_request_bytes=self._core.max_request_bytes, on_stdout=on_stdout, on_stderr=on_stderr)

    async def run_fs(self, entry_path: str, files: Mapping[str, FileContent], **options: Any) -> RunResult:
        """As ``Sandbox.run_fs``, awaitable."""
        return await self.run(entry_path=entry_path, files=files, **options)

    def session(
        self,
        *,
        tools: Mapping[str, HostFunction] | None = None,
        idle_timeout_ms: int | None = None,
        max_lifetime_ms: int | None = None,
        language: str | None = None,
        packages: Sequence[str] | None = None,
        restore: bytes | None = None,
    ) -> AsyncSessionOpening:
        """As ``Sandbox.session``: ``async with sb.session() as s:`` (closed on the way out), or
        ``s = await sb.session()``. ``tools`` may be coroutine functions. ``restore``: a saved
        session to continue (``Session.save()`` / ``AsyncSession.save()``), as in ``Sandbox.session``."""
        own = check_tools(tools, allow_async=True)
        request = _session_request(self._core, own, locals())
        session_language = _session_language(language, restore)

        async def open() -> AsyncSession:
            conn, session_id = await open_session_async(self._core, dict(request))
            return AsyncSession(_SessionState(self._core, conn, session_id, own, session_language))

        return AsyncSessionOpening(open)


_default: Sandbox | None = None
_default_lock = threading.Lock()


def _default_sandbox() -> Sandbox:
    global _default
    with _default_lock:
        if _default is None or _default.closed:
            _default = Sandbox()
        return _default


def run_code(
    code: str,
    *,
    language: str = "python",
    wasm: bytes | None = None,
    files: Mapping[str, FileContent] | None = None,
    stdin: Union[str, bytes, None] = None,
    timeout_ms: int | None = None,
    cpu_time_ms: int | None = None,
    memory_limit_bytes: int | None = None,
    max_output_bytes: int | None = None,
    max_stdin_bytes: int | None = None,
    max_input_file_bytes: int | None = None,
    max_input_bytes: int | None = None,
    max_output_file_bytes: int | None = None,
    max_output_files_total_bytes: int | None = None,
    env: Mapping[str, str] | None = None,
    argv: Sequence[str] | None = None,
    packages: Sequence[str] | None = None,
    on_stdout: OutputCallback | None = None,
    on_stderr: OutputCallback | None = None,
    tools: Mapping[str, HostFunction] | None = None,
) -> RunResult:
    """Runs ``code`` in a fresh interpreter on a process-wide Sandbox (started on first use, stopped at exit).

    Defaults: ``timeout_ms`` 30000, ``cpu_time_ms`` none, ``memory_limit_bytes`` 256 MiB, ``max_output_bytes`` 1 MiB.
    See ``Sandbox.run`` for every argument.
    """
    return _default_sandbox().run(**run_fields(locals()), on_stdout=on_stdout, on_stderr=on_stderr, tools=tools)


def run_fs(
    entry_path: str,
    files: Mapping[str, FileContent],
    *,
    language: str = "python",
    wasm: bytes | None = None,
    stdin: Union[str, bytes, None] = None,
    timeout_ms: int | None = None,
    cpu_time_ms: int | None = None,
    memory_limit_bytes: int | None = None,
    max_output_bytes: int | None = None,
    max_stdin_bytes: int | None = None,
    max_input_file_bytes: int | None = None,
    max_input_bytes: int | None = None,
    max_output_file_bytes: int | None = None,
    max_output_files_total_bytes: int | None = None,
    env: Mapping[str, str] | None = None,
    argv: Sequence[str] | None = None,
    packages: Sequence[str] | None = None,
    on_stdout: OutputCallback | None = None,
    on_stderr: OutputCallback | None = None,
    tools: Mapping[str, HostFunction] | None = None,
) -> RunResult:
    """Runs the file ``entry_path`` from ``files`` on the process-wide Sandbox. See ``Sandbox.run``."""
    return _default_sandbox().run(**run_fields(locals()), on_stdout=on_stdout, on_stderr=on_stderr, tools=tools)
