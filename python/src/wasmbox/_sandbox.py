"""Sandbox / AsyncSandbox (one host process each, started lazily) and the one-call run_code / run_fs."""

from __future__ import annotations

import asyncio
import inspect
import itertools
import os
import queue
import threading
import weakref
from typing import Any, Awaitable, Callable, Mapping, Sequence, Union

from ._connection import Connection, NotSent
from ._errors import HostExitedError, SandboxClosedError, WasmboxError
from ._result import RunResult
from ._runtime import HostRuntime, find_runtime
from ._wire import FileContent, decode_reply, encode_run_request

__all__ = ["Sandbox", "AsyncSandbox", "run_code", "run_fs"]

OutputCallback = Callable[[str], Any]
_OS_SANDBOX_MODES = ("auto", "require", "off")
#: How long interpreter exit (or garbage collection of an unclosed sandbox) waits for runs in flight.
_EXIT_GRACE_S = 3.0


class _Core:
    """What a Sandbox holds: options, the current host connection, request ids. Shared by both APIs."""

    def __init__(self, args: list[str], deno: str | None, host_env: Mapping[str, str] | None) -> None:
        self._args = args
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

    def submit(self, request: dict[str, Any], sink: Callable[[Any], None]) -> tuple[Connection, Any]:
        """Sends a request with a fresh id. When the host had died unnoticed (it never saw the
        request), retries once on a new host; a host that fails to start raises why."""
        for attempt in range(2):
            conn = self.connection()
            request["id"] = next(self._ids)
            try:
                conn.submit(request, sink)
                return conn, request["id"]
            except NotSent as not_sent:
                if attempt == 1 or type(not_sent.error) is not HostExitedError:
                    raise not_sent.error from None
        raise AssertionError("unreachable")

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


def _check_options(pool_size: int | None, os_sandbox: str, max_request_bytes: int | None) -> list[str]:
    args: list[str] = []
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
        args += ["--max-request-bytes", str(max_request_bytes)]
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
    ) -> None:
        args = _check_options(pool_size, os_sandbox, max_request_bytes)
        self._core = _Core(args, os.fspath(deno) if deno is not None else None, host_env)
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


def _request(
    code: str | None,
    entry_path: str | None,
    language: str,
    files: Mapping[str, FileContent] | None,
    stdin: Union[str, bytes, None],
    argv: Sequence[str] | None,
    env: Mapping[str, str] | None,
    timeout_ms: int | None,
    memory_limit_bytes: int | None,
    max_output_bytes: int | None,
    on_stdout: OutputCallback | None,
    on_stderr: OutputCallback | None,
) -> dict[str, Any]:
    for name, callback in (("on_stdout", on_stdout), ("on_stderr", on_stderr)):
        if callback is not None and not callable(callback):
            raise TypeError(f"{name} must be callable with one str argument, got {type(callback).__name__}")
    return encode_run_request(
        0,  # replaced by the sandbox's own id when sent
        code=code,
        entry_path=entry_path,
        language=language,
        files=files,
        stdin=stdin,
        argv=argv,
        env=env,
        timeout_ms=timeout_ms,
        memory_limit_bytes=memory_limit_bytes,
        max_output_bytes=max_output_bytes,
        stream=on_stdout is not None or on_stderr is not None,
    )


class Sandbox(_SandboxBase):
    """Runs untrusted code; each run gets a fresh interpreter in its own zero-permission executor.

    Holds one host process (Deno running wasmbox's ``serve --stdio``) and its pool of warm
    executors. The constructor does no I/O; the host starts on ``start()``, on entering ``with``,
    or on the first run, and is started again if it dies. Safe to use from many threads at once.

    Options: ``pool_size`` executors kept loaded ahead of demand (host default 2);
    ``os_sandbox`` "auto" (bubblewrap when it works), "require" or "off"; ``max_request_bytes``
    largest accepted request (host default 8 MiB); ``deno`` the Deno binary (default: the PyPI
    ``deno`` package, else WASMBOX_DENO, else PATH); ``host_env`` the host's environment
    (default: this process's; guests never see it).
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
        files: Mapping[str, FileContent] | None = None,
        stdin: Union[str, bytes, None] = None,
        timeout_ms: int | None = None,
        memory_limit_bytes: int | None = None,
        max_output_bytes: int | None = None,
        env: Mapping[str, str] | None = None,
        argv: Sequence[str] | None = None,
        on_stdout: OutputCallback | None = None,
        on_stderr: OutputCallback | None = None,
    ) -> RunResult:
        """Runs ``code`` (or the file ``entry_path`` among ``files``) and returns its RunResult.

        Every guest outcome is a RunResult (check ``.ok`` or call ``.raise_for_status()``); a bad
        request raises InvalidRequestError (or a subclass), a host failure another WasmboxError.

        ``files``: sandbox path (relative to /sandbox) -> str or bytes. ``stdin``: everything the
        program reads (then EOF). ``argv``: sys.argv[1:]. ``env``: the guest's whole environment.
        ``timeout_ms`` wall-clock limit (default 30000); ``memory_limit_bytes`` (default 256 MiB,
        at least 48 MiB); ``max_output_bytes`` cap on stdout + stderr (default 1 MiB).
        ``on_stdout`` / ``on_stderr`` are called in this thread with each piece of output as it
        is produced.
        """
        request = _request(code, entry_path, language, files, stdin, argv, env, timeout_ms, memory_limit_bytes, max_output_bytes, on_stdout, on_stderr)
        inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        conn, request_id = self._core.submit(request, inbox.put)
        try:
            while True:
                item = inbox.get()
                if isinstance(item, WasmboxError):
                    raise item
                event = item.get("event")
                if event is None:
                    return decode_reply(item)
                if event == "stdout" and on_stdout is not None:
                    on_stdout(item.get("data", ""))
                elif event == "stderr" and on_stderr is not None:
                    on_stderr(item.get("data", ""))
        finally:
            # When the caller stopped waiting (KeyboardInterrupt, an exception in a callback), the
            # host still finishes the run within its limits; its reply is dropped.
            conn.forget(request_id)

    def run_fs(self, entry_path: str, files: Mapping[str, FileContent], **options: Any) -> RunResult:
        """Runs the file ``entry_path`` from ``files``; tracebacks and sys.argv[0] name it. Options as in ``run``."""
        return self.run(entry_path=entry_path, files=files, **options)


class AsyncSandbox(_SandboxBase):
    """Sandbox for asyncio: ``async with AsyncSandbox() as sb: result = await sb.run("1 + 1")``.

    Same options and semantics as Sandbox; runs from many tasks overlap. ``on_stdout`` /
    ``on_stderr`` run on the event loop and may be coroutine functions. Cancelling a task stops
    waiting; the host still ends the run within its limits.
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
        files: Mapping[str, FileContent] | None = None,
        stdin: Union[str, bytes, None] = None,
        timeout_ms: int | None = None,
        memory_limit_bytes: int | None = None,
        max_output_bytes: int | None = None,
        env: Mapping[str, str] | None = None,
        argv: Sequence[str] | None = None,
        on_stdout: Callable[[str], Union[Any, Awaitable[Any]]] | None = None,
        on_stderr: Callable[[str], Union[Any, Awaitable[Any]]] | None = None,
    ) -> RunResult:
        """As ``Sandbox.run``, awaitable."""
        request = _request(code, entry_path, language, files, stdin, argv, env, timeout_ms, memory_limit_bytes, max_output_bytes, on_stdout, on_stderr)
        loop = asyncio.get_running_loop()
        inbox: asyncio.Queue[Any] = asyncio.Queue()

        def sink(item: Any) -> None:
            try:
                loop.call_soon_threadsafe(inbox.put_nowait, item)
            except RuntimeError:
                pass  # the loop is closed: nobody waits any more

        # Starting the host and writing a large request may block, so neither runs on the loop.
        conn, request_id = await loop.run_in_executor(None, self._core.submit, request, sink)
        try:
            while True:
                item = await inbox.get()
                if isinstance(item, WasmboxError):
                    raise item
                event = item.get("event")
                if event is None:
                    return decode_reply(item)
                callback = on_stdout if event == "stdout" else on_stderr if event == "stderr" else None
                if callback is not None:
                    outcome = callback(item.get("data", ""))
                    if inspect.isawaitable(outcome):
                        await outcome
        finally:
            conn.forget(request_id)

    async def run_fs(self, entry_path: str, files: Mapping[str, FileContent], **options: Any) -> RunResult:
        """As ``Sandbox.run_fs``, awaitable."""
        return await self.run(entry_path=entry_path, files=files, **options)


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
    files: Mapping[str, FileContent] | None = None,
    stdin: Union[str, bytes, None] = None,
    timeout_ms: int | None = None,
    memory_limit_bytes: int | None = None,
    max_output_bytes: int | None = None,
    env: Mapping[str, str] | None = None,
    argv: Sequence[str] | None = None,
    on_stdout: OutputCallback | None = None,
    on_stderr: OutputCallback | None = None,
) -> RunResult:
    """Runs ``code`` in a fresh interpreter on a process-wide Sandbox (started on first use, stopped at exit).

    Defaults: ``timeout_ms`` 30000, ``memory_limit_bytes`` 256 MiB, ``max_output_bytes`` 1 MiB.
    See ``Sandbox.run`` for every argument.
    """
    return _default_sandbox().run(
        code,
        language=language,
        files=files,
        stdin=stdin,
        timeout_ms=timeout_ms,
        memory_limit_bytes=memory_limit_bytes,
        max_output_bytes=max_output_bytes,
        env=env,
        argv=argv,
        on_stdout=on_stdout,
        on_stderr=on_stderr,
    )


def run_fs(
    entry_path: str,
    files: Mapping[str, FileContent],
    *,
    language: str = "python",
    stdin: Union[str, bytes, None] = None,
    timeout_ms: int | None = None,
    memory_limit_bytes: int | None = None,
    max_output_bytes: int | None = None,
    env: Mapping[str, str] | None = None,
    argv: Sequence[str] | None = None,
    on_stdout: OutputCallback | None = None,
    on_stderr: OutputCallback | None = None,
) -> RunResult:
    """Runs the file ``entry_path`` from ``files`` on the process-wide Sandbox. See ``Sandbox.run``."""
    return _default_sandbox().run(
        entry_path=entry_path,
        files=files,
        language=language,
        stdin=stdin,
        timeout_ms=timeout_ms,
        memory_limit_bytes=memory_limit_bytes,
        max_output_bytes=max_output_bytes,
        env=env,
        argv=argv,
        on_stdout=on_stdout,
        on_stderr=on_stderr,
    )
