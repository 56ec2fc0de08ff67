"""One request's exchange with the host, for Sandbox and Session (threads) and their async twins.

A run's replies come to a sink the reader thread calls: stream events, host-function calls, then
one final reply. Invariant: a caller who stops waiting before the final reply (KeyboardInterrupt,
task cancellation, an exception in a callback) cancels the run on the host, so that stopping
means stopping compute, not only ceasing to wait; request ids are never reused, so a late reply
can reach no other caller.
"""

from __future__ import annotations

import asyncio
import inspect
import queue
import threading
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Mapping, TypeVar, Union

from . import _tools
from ._connection import Connection, NotSent, Sink
from ._errors import WasmboxError
from ._result import RunResult
from ._schema import RUN_FIELDS
from ._tools import HostFunction, answer_call, answer_call_async
from ._wire import decode_reply, decode_session_opened, encode_run_request, encode_session_close

if TYPE_CHECKING:
    from ._sandbox import _Core

__all__ = ["Submit", "run_fields", "build_run_request", "run_sync", "run_async", "open_session_sync", "open_session_async", "request_sync", "request_async", "close_quietly"]

#: Sends a request with a fresh id and registers its sink; returns the connection and the id.
Submit = Callable[[dict, Sink], "tuple[Connection, Any]"]
OutputCallback = Callable[[str], Any]
_Opened = TypeVar("_Opened")


def run_fields(arguments: Mapping[str, Any]) -> dict[str, Any]:
    """The run request's fields among a ``run`` method's arguments (its ``locals()``): every keyword
    the host's schema names (see _schema.RUN_FIELDS), so a field added there needs only its keyword."""
    return {name: arguments[name] for name in RUN_FIELDS if name in arguments}


def build_run_request(
    fields: Mapping[str, Any],
    on_stdout: Callable[..., Any] | None,
    on_stderr: Callable[..., Any] | None,
    tools: Mapping[str, HostFunction],
) -> dict[str, Any]:
    for name, callback in (("on_stdout", on_stdout), ("on_stderr", on_stderr)):
        if callback is not None and not callable(callback):
            raise TypeError(f"{name} must be callable with one str argument, got {type(callback).__name__}")
    return encode_run_request(
        0,  # replaced by the sandbox's own id when sent
        stream=on_stdout is not None or on_stderr is not None,
        tools=list(tools),
        **fields,
    )


def run_sync(
    submit: Submit,
    request: dict[str, Any],
    *,
    tools: Mapping[str, HostFunction],
    max_request_bytes: int,
    on_stdout: OutputCallback | None,
    on_stderr: OutputCallback | None,
) -> RunResult:
    inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
    conn, run_id = submit(request, inbox.put)
    answered = False
    try:
        while True:
            item = inbox.get()
            if isinstance(item, WasmboxError):
                answered = True
                raise item
            event = item.get("event")
            if event is None:
                answered = True
                return decode_reply(item)
            if event == "call":
                # On a tool thread: this thread keeps reading, so the run's timeout still ends the
                # wait when a host function never returns.
                _tools.tool_threads.submit(answer_call, conn, run_id, item, tools, max_request_bytes)
            elif event == "stdout" and on_stdout is not None:
                on_stdout(item.get("data", ""))
            elif event == "stderr" and on_stderr is not None:
                on_stderr(item.get("data", ""))
    finally:
        if answered:
            conn.forget(run_id)
        else:
            conn.cancel(run_id)


def _loop_sink(loop: asyncio.AbstractEventLoop, inbox: "asyncio.Queue[Any]") -> Sink:
    def sink(item: Any) -> None:
        try:
            loop.call_soon_threadsafe(inbox.put_nowait, item)
        except RuntimeError:
            pass  # the loop is closed: nobody waits any more

    return sink


async def _submit_async(submit: Submit, request: dict[str, Any], sink: Sink, on_abandon: Callable[[Connection, Any], None]) -> "tuple[Connection, Any]":
    # Starting the host and writing a large request may block, so neither runs on the loop.
    sent = asyncio.get_running_loop().run_in_executor(None, submit, request, sink)
    try:
        return await asyncio.shield(sent)
    except asyncio.CancelledError:
        # Cancelled while the request was being written: deal with it once it has been.
        def when_sent(future: "asyncio.Future[tuple[Connection, Any]]") -> None:
            if not future.cancelled() and future.exception() is None:
                on_abandon(*future.result())

        sent.add_done_callback(when_sent)
        raise


async def run_async(
    submit: Submit,
    request: dict[str, Any],
    *,
    tools: Mapping[str, HostFunction],
    max_request_bytes: int,
    on_stdout: Callable[[str], Union[Any, Awaitable[Any]]] | None,
    on_stderr: Callable[[str], Union[Any, Awaitable[Any]]] | None,
) -> RunResult:
    loop = asyncio.get_running_loop()
    inbox: asyncio.Queue[Any] = asyncio.Queue()
    conn, run_id = await _submit_async(submit, request, _loop_sink(loop, inbox), lambda conn, run_id: conn.cancel(run_id))
    calls: set[asyncio.Task[None]] = set()
    answered = False
    try:
        while True:
            item = await inbox.get()
            if isinstance(item, WasmboxError):
                answered = True
                raise item
            event = item.get("event")
            if event is None:
                answered = True
                return decode_reply(item)
            if event == "call":
                task = loop.create_task(answer_call_async(conn, run_id, item, tools, max_request_bytes))
                calls.add(task)
                task.add_done_callback(calls.discard)
                continue
            callback = on_stdout if event == "stdout" else on_stderr if event == "stderr" else None
            if callback is not None:
                outcome = callback(item.get("data", ""))
                if inspect.isawaitable(outcome):
                    await outcome
    finally:
        # A coroutine host function still going when its run ended answers nobody.
        for task in calls:
            task.cancel()
        if answered:
            conn.forget(run_id)
        else:
            conn.cancel(run_id)


def request_sync(submit: Submit, request: dict[str, Any]) -> dict[str, Any]:
    """A request with one reply (no events). Returns the reply; a host error in it is raised."""
    inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
    submit(request, inbox.put)
    return _checked(inbox.get())


async def request_async(submit: Submit, request: dict[str, Any]) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    inbox: asyncio.Queue[Any] = asyncio.Queue()
    await _submit_async(submit, request, _loop_sink(loop, inbox), lambda conn, request_id: None)
    return _checked(await inbox.get())


def _checked(item: Any) -> dict[str, Any]:
    if isinstance(item, WasmboxError):
        raise item
    if "error" in item and "event" not in item:
        decode_reply(item)  # raises the host error it carries
    return item


# -- sessions ------------------------------------------------------------------------------------


def close_quietly(core: "_Core", conn: Connection, session_id: str) -> None:
    """Closes a session nobody holds any more, without waiting (from any thread, the reader's included)."""

    def send() -> None:
        try:
            conn.send(encode_session_close(core.next_id(), session_id))
        except NotSent:
            pass  # that host is gone, and its sessions with it

    if conn.alive:
        _tools.tool_threads.submit(send)


class _Opening:
    """A ``session.open`` (or ``session.fork``) in flight. If its caller stops waiting, the sessions
    it opens are closed as soon as the reply arrives, rather than holding executors until the
    host's idle timeout."""

    def __init__(self, core: "_Core", deliver: Sink) -> None:
        self._core = core
        self._deliver = deliver
        self._lock = threading.Lock()
        self._abandoned = False
        self.conn: Connection | None = None

    def sink(self, item: Any) -> None:
        with self._lock:
            if not self._abandoned:
                self._deliver(item)
                return
        self.close_orphan(item)

    def abandon(self) -> None:
        with self._lock:
            self._abandoned = True

    def close_orphan(self, item: Any) -> None:
        if not isinstance(item, dict) or self.conn is None:
            return
        ids = [item.get("sessionId")]
        if isinstance(item.get("sessionIds"), list):
            ids += item["sessionIds"]  # a fork's
        for session_id in ids:
            if isinstance(session_id, str):
                close_quietly(self._core, self.conn, session_id)


def open_session_sync(
    core: "_Core",
    request: dict[str, Any],
    *,
    submit: Submit | None = None,
    decode: Callable[[Mapping[str, Any]], _Opened] = decode_session_opened,  # type: ignore[assignment]
) -> "tuple[Connection, _Opened]":
    """Sends a request that opens sessions (``session.open``, or ``session.fork`` with ``submit``
    on the parent's host and ``decode_session_forked``); returns the host and the decoded reply."""
    inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
    opening = _Opening(core, inbox.put)
    opening.conn, _ = (submit or core.submit)(request, opening.sink)
    item: Any = None
    try:
        item = inbox.get()
    finally:
        if item is None:
            # Invariant: abandon first, then drain. After abandon() no reply reaches the inbox,
            # so a reply is either in it now or closed by the sink.
            opening.abandon()
            while True:
                try:
                    opening.close_orphan(inbox.get_nowait())
                except queue.Empty:
                    break
    if isinstance(item, WasmboxError):
        raise item
    return opening.conn, decode(item)


async def open_session_async(
    core: "_Core",
    request: dict[str, Any],
    *,
    submit: Submit | None = None,
    decode: Callable[[Mapping[str, Any]], _Opened] = decode_session_opened,  # type: ignore[assignment]
) -> "tuple[Connection, _Opened]":
    """As open_session_sync, awaitable."""
    loop = asyncio.get_running_loop()
    inbox: asyncio.Queue[Any] = asyncio.Queue()
    opening = _Opening(core, _loop_sink(loop, inbox))
    send = submit or core.submit

    def submit_and_keep(request: dict[str, Any], sink: Sink) -> "tuple[Connection, Any]":
        opening.conn, request_id = send(request, sink)
        return opening.conn, request_id

    def drain() -> None:
        while not inbox.empty():
            opening.close_orphan(inbox.get_nowait())

    def abandon(*_: Any) -> None:
        opening.abandon()
        # Replies the sink handed to the loop before abandon() are queued ahead of this callback.
        loop.call_soon(drain)

    try:
        await _submit_async(submit_and_keep, request, opening.sink, abandon)
        item = await inbox.get()
    except asyncio.CancelledError:
        if opening.conn is not None:
            abandon()
        raise
    if isinstance(item, WasmboxError):
        raise item
    assert opening.conn is not None
    return opening.conn, decode(item)
