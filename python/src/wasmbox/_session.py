"""Session / AsyncSession: one interpreter whose globals, imports and files carry over between runs."""

from __future__ import annotations

import base64
import threading
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Generator, List, Mapping, Sequence, Union, overload

from ._connection import Connection, NotSent
from ._errors import HostExitedError, SandboxClosedError, SessionClosedError, SessionDeadError, SessionNotFoundError
from ._result import RunResult
from ._runs import (
    Submit,
    build_run_request,
    close_quietly,
    open_session_async,
    open_session_sync,
    request_async,
    request_sync,
    run_async,
    run_fields,
    run_sync,
)
from ._tools import HostFunction, check_tools
from ._wire import (
    FileContent,
    decode_session_forked,
    decode_session_saved,
    encode_session_close,
    encode_session_files,
    encode_session_fork,
    encode_session_run,
    encode_session_save,
)

if TYPE_CHECKING:
    from ._sandbox import _Core

__all__ = ["Session", "AsyncSession", "AsyncSessionOpening", "SessionFile", "SessionFiles", "AsyncSessionFiles"]

#: Errors that mean the session is already gone, which is what close() wants.
_GONE = (SessionClosedError, SessionDeadError, SessionNotFoundError, SandboxClosedError, HostExitedError)


class _SessionState:
    """What both session classes hold: the session's id on the host that opened it, and its tools."""

    def __init__(self, core: "_Core", conn: Connection, session_id: str, tools: Mapping[str, HostFunction], language: str | None = "python") -> None:
        self.core = core
        #: None for a restored session whose language was not given: its runs then name none, and
        #: the host runs them in the session's own.
        self.language = language
        self.conn = conn
        self.id = session_id
        self.tools = dict(tools)
        self.closed = False
        self._lock = threading.Lock()

    def _check(self) -> None:
        if self.closed:
            raise SessionClosedError(f"session {self.id} is closed")
        if self.core.closed:
            raise SessionClosedError(f"session {self.id} was closed with its sandbox")
        if not self.conn.alive:
            # Sessions live in the host process that opened them; a new host does not know them.
            raise SessionDeadError(
                f"session {self.id} is dead: the host process that held it exited (or belongs to the process this one was forked from); open a new session"
            )

    def _submit_on_own_host(self, request: dict[str, Any], sink: Any) -> "tuple[Connection, Any]":
        self._check()
        try:
            return self.core.submit_on(self.conn, request, sink)
        except NotSent as not_sent:
            self._check()
            raise SessionDeadError(f"session {self.id} is dead: {not_sent.error.message}") from not_sent.error

    def submit_run(self, request: dict[str, Any], sink: Any) -> "tuple[Connection, Any]":
        return self._submit_on_own_host(encode_session_run(self.id, request), sink)

    def submit_op(self, request: dict[str, Any], sink: Any) -> "tuple[Connection, Any]":
        """Sends a request about this session (files, save, fork) to the host that holds it."""
        return self._submit_on_own_host(request, sink)

    submit_files = submit_op

    def fork_request(self, count: int | None) -> dict[str, Any]:
        return encode_session_fork(0, self.id, 1 if count is None else count)

    def forked(self, conn: Connection, ids: list[str], cls: type) -> list[Any]:
        """Sessions for a fork's ids: on this session's host, with its host functions and language."""
        return [cls(_SessionState(self.core, conn, session_id, self.tools, self.language)) for session_id in ids]

    def submit_close(self) -> Submit | None:
        """Marks the session closed; returns how to tell the host, or None when there is nothing to tell."""
        with self._lock:
            if self.closed:
                return None
            self.closed = True
        if self.core.closed or not self.conn.alive:
            return None
        return self._submit_close

    def _submit_close(self, request: dict[str, Any], sink: Any) -> "tuple[Connection, Any]":
        try:
            return self.core.submit_on(self.conn, request, sink)
        except NotSent as not_sent:
            raise not_sent.error from None

    def tools_for(self, tools: Mapping[str, HostFunction] | None, *, allow_async: bool) -> "tuple[dict[str, HostFunction], dict[str, HostFunction]]":
        """(this run's own tools, to name in the request; every tool the run may call)."""
        own = check_tools(tools, allow_async=allow_async)
        return own, {**self.tools, **own}


@dataclass(frozen=True)
class SessionFile:
    """A regular file under the session's /sandbox: its path (relative to /sandbox) and size."""

    path: str
    size: int


def _write_fields(path: str, content: FileContent) -> dict[str, Any]:
    if isinstance(content, str):
        return {"path": path, "content": content, "encoding": "utf8"}
    if isinstance(content, (bytes, bytearray, memoryview)):
        return {"path": path, "content": base64.b64encode(bytes(content)).decode("ascii"), "encoding": "base64"}
    raise TypeError(f"content must be str or bytes, got {type(content).__name__}")


def _listed(reply: Mapping[str, Any]) -> list[SessionFile]:
    return [SessionFile(str(entry["path"]), int(entry["size"])) for entry in reply.get("files", [])]


def _read(reply: Mapping[str, Any]) -> bytes:
    return base64.b64decode(reply["content"])


class SessionFiles:
    """``session.files``: the session's files under /sandbox, read and written between runs
    without running code. Paths are relative to /sandbox; a path that climbs out of it raises
    InvalidPathError, as does reading one that does not exist."""

    def __init__(self, state: _SessionState) -> None:
        self._state = state

    def list(self) -> list[SessionFile]:
        """Every regular file under /sandbox, with its size."""
        return _listed(request_sync(self._state.submit_files, encode_session_files(self._state.id, "list")))

    def read(self, path: str) -> bytes:
        return _read(request_sync(self._state.submit_files, encode_session_files(self._state.id, "read", path=path)))

    def read_text(self, path: str, encoding: str = "utf-8") -> str:
        return self.read(path).decode(encoding)

    def write(self, path: str, content: FileContent) -> None:
        """Creates or replaces the file (and its directories); str is written as UTF-8."""
        request_sync(self._state.submit_files, encode_session_files(self._state.id, "write", **_write_fields(path, content)))


class AsyncSessionFiles:
    """As SessionFiles, awaitable."""

    def __init__(self, state: _SessionState) -> None:
        self._state = state

    async def list(self) -> list[SessionFile]:
        return _listed(await request_async(self._state.submit_files, encode_session_files(self._state.id, "list")))

    async def read(self, path: str) -> bytes:
        return _read(await request_async(self._state.submit_files, encode_session_files(self._state.id, "read", path=path)))

    async def read_text(self, path: str, encoding: str = "utf-8") -> str:
        return (await self.read(path)).decode(encoding)

    async def write(self, path: str, content: FileContent) -> None:
        await request_async(self._state.submit_files, encode_session_files(self._state.id, "write", **_write_fields(path, content)))


class _SessionBase:
    def __init__(self, state: _SessionState) -> None:
        self._state = state
        # An unclosed session that is garbage-collected is closed on the host (without waiting).
        self._finalizer = weakref.finalize(self, close_quietly, state.core, state.conn, state.id)

    @property
    def id(self) -> str:
        """The host's id for this session."""
        return self._state.id

    @property
    def closed(self) -> bool:
        """True after ``close()`` (or the sandbox's). A session the host ended answers SessionClosedError
        or SessionDeadError on its next run."""
        return self._state.closed or self._state.core.closed

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._state.id}{' closed' if self.closed else ''}>"


class Session(_SessionBase):
    """A Python interpreter of its own, in an executor no other run or session shares: globals,
    imports and files (under /sandbox) carry over from one ``run`` to the next. Runs are queued
    and execute one at a time. Made by ``Sandbox.session()`` (or ``fork()``); a context manager.

    Limits apply per run. When a run ends by timeout or memory limit and the interpreter survived
    it (the guest took the KeyboardInterrupt or MemoryError), the session goes on; when the
    executor had to be killed (the guest ignored the interrupt, the run was cancelled, it
    crashed), the session is dead and every later run raises SessionDeadError. After ``close()``,
    the sandbox's close, or the host's ``idle_timeout_ms`` / ``max_lifetime_ms``, runs raise
    SessionClosedError.

    ``save()`` turns its state into bytes that ``Sandbox.session(restore=...)`` continues, in
    another sandbox, process or machine; ``fork(n)`` copies it into n new sessions at once.
    """

    @property
    def files(self) -> SessionFiles:
        """The session's files under /sandbox, between runs: ``list()``, ``read()``, ``read_text()``, ``write()``."""
        return SessionFiles(self._state)

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def save(self) -> bytes:
        """Saves the session: returns a self-contained blob (bytes) of its interpreter (globals,
        imported modules, class instances, the random generator's state), its files (/sandbox,
        /tmp, /home) and what it was opened with (language, packages, host function names). The
        session goes on.

        The blob is versioned, checksummed and compressed; keep it anywhere and continue it with
        ``sandbox.session(restore=blob, tools=...)``, in another Sandbox, process or machine that
        has the same wasmbox version and packages (on another machine, SessionBlobIncompatibleError
        says when its Python snapshot differs). Host functions are not in it: they are bound
        again by name, so the restoring call passes ``tools`` with (at least) the same names.

        Raises SessionNotSaveableError naming what cannot be carried (a JavaScript object Python
        holds, e.g. a ``js`` proxy kept in a variable; a shared library loaded after the
        interpreter started; a special file): delete it and save again. Sessions of languages other
        than Python raise WasmboxError with code "NOT_IMPLEMENTED".
        """
        return decode_session_saved(request_sync(self._state.submit_op, encode_session_save(0, self._state.id)))

    @overload
    def fork(self, n: None = None) -> "Session": ...

    @overload
    def fork(self, n: int) -> "List[Session]": ...

    def fork(self, n: int | None = None) -> "Union[Session, List[Session]]":
        """Independent copies of the session, each an interpreter in an executor of its own, made
        without a round trip through a blob: ``fork()`` returns one Session, ``fork(n)`` a list of
        n. Each starts from this session's state now (globals, modules, files, and the random
        generator's state too: reseed in a fork to draw differently), lives on the same host,
        and has this session's host functions, language and timeouts; then each goes its own way.
        This session goes on. Counts against the host's session limit (TooManySessionsError);
        opens all or none. Raises as ``save()`` does for state that cannot be carried.
        """
        request = self._state.fork_request(n)
        conn, ids = open_session_sync(self._state.core, request, submit=self._state.submit_op, decode=decode_session_forked)
        forks: list[Session] = self._state.forked(conn, ids, Session)
        return forks[0] if n is None else forks

    def close(self) -> None:
        """Stops the session's interpreter and executor. Idempotent; a dead session closes quietly."""
        self._finalizer.detach()
        submit = self._state.submit_close()
        if submit is None:
            return
        try:
            request_sync(submit, encode_session_close(0, self._state.id))
        except _GONE:
            pass

    def run(
        self,
        code: str | None = None,
        *,
        entry_path: str | None = None,
        language: str | None = None,
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
        on_stdout: Callable[[str], Any] | None = None,
        on_stderr: Callable[[str], Any] | None = None,
        tools: Mapping[str, HostFunction] | None = None,
    ) -> RunResult:
        """Runs code in the session's interpreter; arguments as in ``Sandbox.run`` (``language``: the
        session's, which is the only one it runs). ``files`` are
        added to the session's files; ``tools`` add to the session's own for this run."""
        own, every = self._state.tools_for(tools, allow_async=False)
        request = build_run_request({**run_fields(locals()), "language": language or self._state.language}, on_stdout, on_stderr, own)
        return run_sync(
            self._state.submit_run, request, tools=every, max_request_bytes=self._state.core.max_request_bytes, on_stdout=on_stdout, on_stderr=on_stderr
        )

    def run_fs(self, entry_path: str, files: Mapping[str, FileContent], **options: Any) -> RunResult:
        """Runs the file ``entry_path`` from ``files`` (added to the session's files). Options as in ``run``."""
        return self.run(entry_path=entry_path, files=files, **options)


class AsyncSession(_SessionBase):
    """Session for asyncio: ``async with sb.session() as s: await s.run("x = 1")``. Same semantics
    as Session; ``tools`` may be coroutine functions. Cancelling the task of a run cancels the run,
    which leaves the session dead."""

    @property
    def files(self) -> AsyncSessionFiles:
        """As ``Session.files``, awaitable."""
        return AsyncSessionFiles(self._state)

    async def __aenter__(self) -> "AsyncSession":
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def save(self) -> bytes:
        """As ``Session.save``, awaitable: the session's state as a self-contained blob."""
        return decode_session_saved(await request_async(self._state.submit_op, encode_session_save(0, self._state.id)))

    @overload
    async def fork(self, n: None = None) -> "AsyncSession": ...

    @overload
    async def fork(self, n: int) -> "List[AsyncSession]": ...

    async def fork(self, n: int | None = None) -> "Union[AsyncSession, List[AsyncSession]]":
        """As ``Session.fork``, awaitable: one AsyncSession, or a list of ``n``."""
        request = self._state.fork_request(n)
        conn, ids = await open_session_async(self._state.core, request, submit=self._state.submit_op, decode=decode_session_forked)
        forks: list[AsyncSession] = self._state.forked(conn, ids, AsyncSession)
        return forks[0] if n is None else forks

    async def close(self) -> None:
        """As ``Session.close``, awaitable."""
        self._finalizer.detach()
        submit = self._state.submit_close()
        if submit is None:
            return
        try:
            await request_async(submit, encode_session_close(0, self._state.id))
        except _GONE:
            pass

    async def run(
        self,
        code: str | None = None,
        *,
        entry_path: str | None = None,
        language: str | None = None,
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
        """As ``Session.run``, awaitable."""
        own, every = self._state.tools_for(tools, allow_async=True)
        request = build_run_request({**run_fields(locals()), "language": language or self._state.language}, on_stdout, on_stderr, own)
        return await run_async(
            self._state.submit_run, request, tools=every, max_request_bytes=self._state.core.max_request_bytes, on_stdout=on_stdout, on_stderr=on_stderr
        )

    async def run_fs(self, entry_path: str, files: Mapping[str, FileContent], **options: Any) -> RunResult:
        """As ``Session.run_fs``, awaitable."""
        return await self.run(entry_path=entry_path, files=files, **options)


class AsyncSessionOpening:
    """What ``AsyncSandbox.session()`` returns: await it for an AsyncSession, or use it in
    ``async with``, which closes the session on the way out."""

    def __init__(self, open: Callable[[], Awaitable[AsyncSession]]) -> None:
        self._open = open
        self._session: AsyncSession | None = None

    def __await__(self) -> Generator[Any, None, AsyncSession]:
        return self._open().__await__()

    async def __aenter__(self) -> AsyncSession:
        self._session = await self._open()
        return self._session

    async def __aexit__(self, *exc_info: object) -> None:
        if self._session is not None:
            await self._session.close()
