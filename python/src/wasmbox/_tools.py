"""Host functions: the guest's ``tools.name(key=value)`` calls, answered by the caller's Python functions.

The host turns each guest call into an event line ``{"id", "event": "call", "callId", "name",
"args"}`` and waits for ``{"id", "callId", "result"}`` or ``{"id", "callId", "error"}``. The
reader thread only hands the event on; functions run on the threads here (or, for AsyncSandbox
coroutine functions, on the event loop), so a slow function never holds up other replies.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import inspect
import json
import logging
import os
import threading
from typing import Any, Callable, Mapping

from ._connection import Connection, NotSent

__all__ = ["HostFunction", "check_tools", "answer_call", "answer_call_async", "tool_threads"]

log = logging.getLogger("wasmbox")

#: A host function: called with the guest's keyword arguments, returns a JSON value.
HostFunction = Callable[..., Any]


def check_tools(tools: Mapping[str, HostFunction] | None, *, allow_async: bool) -> dict[str, HostFunction]:
    """Checks the types of a ``tools`` mapping. The host checks the names (Python identifiers, no "__")."""
    if tools is None:
        return {}
    if not isinstance(tools, Mapping):
        raise TypeError(f"tools must be a mapping of name -> function, got {type(tools).__name__}")
    checked: dict[str, HostFunction] = {}
    for name, function in tools.items():
        if not isinstance(name, str):
            raise TypeError(f"host function names must be str, got {name!r}")
        if not callable(function):
            raise TypeError(f"host function {name} must be callable, got {type(function).__name__}")
        if not allow_async and inspect.iscoroutinefunction(function):
            raise TypeError(f"host function {name} is a coroutine function: use AsyncSandbox, or pass a plain function")
        checked[name] = function
    return checked


class _ToolThreads:
    """Daemon threads that run synchronous host functions, kept a while for reuse.

    Not a ThreadPoolExecutor: that joins its workers at interpreter exit, so one host function
    that never returns (its run long since timed out) would hang the exit of the whole program.
    """

    def __init__(self, idle_s: float = 30.0) -> None:
        self._idle_s = idle_s
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._jobs: collections.deque[tuple[concurrent.futures.Future[Any], Callable[..., Any], tuple, dict]] = collections.deque()
        self._waiting = 0

    def submit(self, function: Callable[..., Any], /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[Any]:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        with self._lock:
            self._jobs.append((future, function, args, kwargs))
            # Invariant: every queued job has a waiting worker woken for it, or a new worker.
            if self._waiting > 0:
                self._wake.notify()
                return future
        threading.Thread(target=self._work, name="wasmbox-host-function", daemon=True).start()
        return future

    def _work(self) -> None:
        while True:
            with self._lock:
                while not self._jobs:
                    self._waiting += 1
                    woken = self._wake.wait(self._idle_s)
                    self._waiting -= 1
                    if not woken and not self._jobs:
                        return
                future, function, args, kwargs = self._jobs.popleft()
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(function(*args, **kwargs))
            except BaseException as error:  # noqa: BLE001 - goes to whoever waits on the future
                future.set_exception(error)


tool_threads = _ToolThreads()


def _after_fork_in_child() -> None:
    global tool_threads
    tool_threads = _ToolThreads()  # the parent's workers did not survive the fork


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _encode(message: dict[str, Any]) -> bytes:
    # allow_nan=False: NaN is not JSON, and a line the host cannot parse is answered with an error
    # under the run's id, which would end the run for the client while the host goes on with it.
    return json.dumps(message, ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode("ascii")


def _error_line(run_id: Any, call_id: Any, message: str) -> bytes:
    return _encode({"id": run_id, "callId": call_id, "error": message})


def _result_line(run_id: Any, call_id: Any, name: str, value: Any, max_request_bytes: int) -> bytes:
    try:
        line = _encode({"id": run_id, "callId": call_id, "result": value})
    except (TypeError, ValueError, RecursionError) as error:
        return _error_line(run_id, call_id, f"host function {name} returned a value that is not JSON-serialisable: {error}")
    if len(line) > max_request_bytes:
        # The host refuses a longer line as REQUEST_TOO_LARGE, under the run's id (see _encode).
        return _error_line(run_id, call_id, f"host function {name} returned {len(line)} bytes of JSON, more than the host accepts ({max_request_bytes})")
    return line


def _message(error: BaseException) -> str:
    return str(error) or type(error).__name__


def _lookup(event: Mapping[str, Any], tools: Mapping[str, HostFunction]) -> tuple[str, Any, HostFunction | None, str | None]:
    name = event.get("name")
    args = event.get("args")
    if not isinstance(name, str) or name not in tools:
        return str(name), args, None, f"no host function named {name!r} was given to this run"
    if not isinstance(args, dict):
        return name, args, None, f"host function {name} got arguments that are not keyword arguments"
    return name, args, tools[name], None


def _send(conn: Connection, line: bytes) -> None:
    try:
        conn.send_line(line)
    except NotSent:
        pass  # the host is gone; the run in flight learns that from the reader


def _send_result(conn: Connection, run_id: Any, call_id: Any, name: str, value: Any, max_request_bytes: int) -> None:
    _send(conn, _result_line(run_id, call_id, name, value, max_request_bytes))


def answer_call(conn: Connection, run_id: Any, event: Mapping[str, Any], tools: Mapping[str, HostFunction], max_request_bytes: int) -> None:
    """Runs one call of a synchronous host function and sends its answer. Runs on a tool thread."""
    call_id = event.get("callId")
    name, args, function, problem = _lookup(event, tools)
    if function is None:
        line = _error_line(run_id, call_id, problem or "")
    else:
        try:
            value = function(**args)
        except BaseException as error:  # noqa: BLE001 - whatever it raised is the guest's ToolError
            line = _error_line(run_id, call_id, _message(error))
        else:
            if inspect.isawaitable(value):
                close = getattr(value, "close", None)
                if close is not None:
                    close()  # a never-awaited coroutine would warn
                line = _error_line(run_id, call_id, f"host function {name} returned an awaitable; use AsyncSandbox for coroutine functions")
            else:
                line = _result_line(run_id, call_id, name, value, max_request_bytes)
    _send(conn, line)


async def answer_call_async(conn: Connection, run_id: Any, event: Mapping[str, Any], tools: Mapping[str, HostFunction], max_request_bytes: int) -> None:
    """Runs one call for AsyncSandbox: coroutine functions on the loop, plain ones on a tool thread."""
    call_id = event.get("callId")
    name, args, function, problem = _lookup(event, tools)
    if function is None:
        line = _error_line(run_id, call_id, problem or "")
    else:
        try:
            if inspect.iscoroutinefunction(function):
                value = await function(**args)
            else:
                value = await asyncio.wrap_future(tool_threads.submit(function, **args))
                if inspect.isawaitable(value):
                    value = await value
        except asyncio.CancelledError:
            raise  # the run ended; nobody waits for this answer
        except Exception as error:  # noqa: BLE001 - whatever it raised is the guest's ToolError
            line = _error_line(run_id, call_id, _message(error))
        else:
            # Encoding a large value, and writing while another thread writes a large request,
            # take time: not on the loop.
            await asyncio.wrap_future(tool_threads.submit(_send_result, conn, run_id, call_id, name, value, max_request_bytes))
            return
    await asyncio.wrap_future(tool_threads.submit(_send, conn, line))
