"""One host process (`deno run dist/cli/bin.js serve --stdio`) and the requests in flight on it.

A reader thread reads reply lines and hands each to the sink registered under its id: stream
events and host-function calls while the request is open, then its final reply. When the
process ends, every open request gets a WasmboxError instead.

Invariant: the host leads its own process group and is reaped only after that group has been
killed, so its pid and group id cannot have been reused by another process when we signal them.
"""

from __future__ import annotations

import collections
import json
import logging
import os
import re
import signal
import subprocess
import threading
import time
from typing import Any, Callable, Union

from ._errors import (
    ExecutorStartFailedError,
    HostExitedError,
    ProtocolError,
    SandboxClosedError,
    WasmboxError,
    error_from_wire,
)
from ._runtime import HostRuntime
from ._wire import encode_line, is_final_reply

__all__ = ["Connection", "NotSent", "Sink"]

log = logging.getLogger("wasmbox")

#: Receives, from the reader thread, each message for one request, or the error that ended it.
#: It must not block: put into a queue, or call_soon_threadsafe.
Sink = Callable[[Union[dict, WasmboxError]], None]

_POSIX = os.name == "posix"
_CODE_AT_END = re.compile(r"^wasmbox: (?P<message>.*?)(?: \[(?P<code>[A-Z_]+)\])?$")


class NotSent(Exception):
    """The request could not be written: the host is gone, and it never saw the request.

    ``error`` is why the host ended (as it would be given to requests in flight).
    """

    def __init__(self, error: WasmboxError) -> None:
        super().__init__(error.message)
        self.error = error


class Connection:
    def __init__(self, runtime: HostRuntime, args: list[str], env: dict[str, str]) -> None:
        command = runtime.command(["serve", "--stdio", *args])
        try:
            self._proc = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
                # Its own process group, so that stopping it reaches everything it left in the group.
                start_new_session=_POSIX,
            )
        except OSError as cause:
            raise ExecutorStartFailedError(f"cannot start the wasmbox host ({command[0]}): {cause}") from cause
        self.pid = self._proc.pid
        # After os.fork() the child holds copies of our pipes but no reader thread: it must never
        # write to the parent's host (see _owned).
        self._owner_pid = os.getpid()
        self._lock = threading.Lock()  # guards _pending and _dead
        self._write_lock = threading.Lock()
        self._reap_lock = threading.Lock()
        self._pending: dict[Any, Sink] = {}
        self._dead: WasmboxError | None = None
        self._closing = False
        self._replied = False
        self._reaped = False
        self._eof = threading.Event()
        self._stderr_tail: collections.deque[str] = collections.deque(maxlen=40)
        self._stderr_thread = threading.Thread(target=self._read_stderr, name=f"wasmbox-host-{self.pid}-stderr", daemon=True)
        self._stdout_thread = threading.Thread(target=self._read_stdout, name=f"wasmbox-host-{self.pid}-reader", daemon=True)
        self._stderr_thread.start()
        self._stdout_thread.start()

    @property
    def alive(self) -> bool:
        return self._dead is None and not self._eof.is_set() and not self._closing and self._owned()

    def _owned(self) -> bool:
        return os.getpid() == self._owner_pid

    def _check_owned(self) -> None:
        if not self._owned():
            raise NotSent(HostExitedError("this host belongs to the process this one was forked from"))

    def submit(self, request: dict[str, Any], sink: Sink) -> None:
        """Registers ``sink`` under ``request["id"]`` and writes the request. Raises NotSent when the host is gone."""
        self._check_owned()
        request_id = request["id"]
        line = encode_line(request)
        with self._lock:
            if self._closing:
                raise NotSent(SandboxClosedError("the sandbox is closed"))
            if self._dead is not None:
                raise NotSent(self._dead)
            self._pending[request_id] = sink
        try:
            with self._write_lock:
                assert self._proc.stdin is not None
                self._proc.stdin.write(line)
                self._proc.stdin.flush()
        except (OSError, ValueError) as cause:  # BrokenPipeError, or stdin closed by close()
            with self._lock:
                self._pending.pop(request_id, None)
            raise NotSent(self._death(cause)) from cause

    def forget(self, request_id: Any) -> None:
        """Stops delivering to a request's sink (its caller gave up waiting). The host still finishes the run."""
        with self._lock:
            self._pending.pop(request_id, None)

    def send(self, message: dict[str, Any]) -> None:
        """Writes a message whose reply, if any, nobody waits for (a cancel, an orphan's close)."""
        self.send_line(encode_line(message))

    def send_line(self, line: bytes) -> None:
        """Writes one encoded line (e.g. an answer to a host-function call); a newline is added when missing."""
        self._check_owned()
        if not line.endswith(b"\n"):
            line += b"\n"
        try:
            with self._write_lock:
                assert self._proc.stdin is not None
                self._proc.stdin.write(line)
                self._proc.stdin.flush()
        except (OSError, ValueError) as cause:
            raise NotSent(self._death(cause)) from cause

    def cancel(self, request_id: Any) -> None:
        """Stops delivering a run's replies and asks the host to cancel it (it answers "cancelled",
        or NOT_FOUND when the run already ended; both are dropped). Never raises, never waits for a
        dead host: it is called while an exception or a cancellation is on its way up."""
        self.forget(request_id)
        if not self.alive:
            return
        try:
            self.send({"op": "cancel", "id": request_id})
        except NotSent:
            pass

    def _death(self, cause: BaseException) -> WasmboxError:
        """Why the host is gone, once the reader has seen it end (it reads the host's last words)."""
        self._stdout_thread.join(timeout=15)
        return self._dead or HostExitedError(f"cannot write to the wasmbox host: {cause}")

    # -- reading -------------------------------------------------------------------------------

    def _read_stderr(self) -> None:
        assert self._proc.stderr is not None
        with self._proc.stderr:
            for raw in self._proc.stderr:
                line = raw.decode("utf-8", "replace").rstrip("\n")
                self._stderr_tail.append(line)
                log.info("host: %s", line)

    def _read_stdout(self) -> None:
        assert self._proc.stdout is not None
        broken: WasmboxError | None = None
        try:
            for line in self._proc.stdout:
                if not line.strip():
                    continue
                try:
                    message = json.loads(line)
                except ValueError:
                    broken = ProtocolError(f"the host sent a line that is not JSON: {line[:200]!r}")
                    break
                if not isinstance(message, dict):
                    broken = ProtocolError(f"the host sent a line that is not a JSON object: {line[:200]!r}")
                    break
                self._replied = True
                self._dispatch(message)
        except Exception as cause:  # noqa: BLE001 - the reader must end every request, whatever happened
            broken = ProtocolError(f"reading from the host failed: {cause!r}")
        if broken is not None:
            log.error("%s; stopping the host", broken)
            with self._lock:
                self._dead = broken
        self._eof.set()
        if broken is not None:
            self._reap()  # kill: a host that broke the protocol cannot be trusted with more requests
        else:
            self._wait_exit(10.0)  # stdout ends when the host exits; never wait forever on one that lingers
            self._reap()
        self._stderr_thread.join(timeout=2)
        self._fail_all(broken or self._exit_error())
        self._close_pipes()

    def _close_pipes(self) -> None:
        with self._write_lock:
            for pipe in (self._proc.stdin, self._proc.stdout):
                try:
                    if pipe is not None:
                        pipe.close()
                except OSError:
                    pass

    def _dispatch(self, message: dict[str, Any]) -> None:
        request_id = message.get("id")
        if request_id is None:
            # serve-stdio answers without an id only to lines it could not read one from.
            log.warning("host reply without an id: %s", message)
            return
        final = is_final_reply(message)
        with self._lock:
            sink = self._pending.pop(request_id, None) if final else self._pending.get(request_id)
        if sink is None:
            log.debug("host reply for a request nobody waits for: %s", request_id)
            return
        _deliver(sink, message)

    def _fail_all(self, error: WasmboxError) -> None:
        with self._lock:
            if self._dead is None:
                self._dead = error
            pending, self._pending = self._pending, {}
        for sink in pending.values():
            _deliver(sink, error)

    def _exit_error(self) -> WasmboxError:
        code = self._proc.returncode
        tail = [line for line in self._stderr_tail if line.strip()]
        if self._closing:
            return SandboxClosedError("the sandbox was closed before the run answered")
        how = f"signal {-code}" if code is not None and code < 0 else f"code {code}"
        if code is not None and code > 0 and tail:
            # The host's CLI reports a failure as its last stderr line: "wasmbox: message [CODE]".
            match = _CODE_AT_END.match(tail[-1])
            if match and match.group("code"):
                return error_from_wire({"code": match.group("code"), "message": match.group("message")})
        shown = ("\n" + "\n".join(tail[-8:])) if tail else ""
        if code is not None and code > 0 and not self._replied:
            return ExecutorStartFailedError(f"the wasmbox host exited ({how}) before it answered{shown}")
        return HostExitedError(f"the wasmbox host exited ({how}) while the run was in flight; the next run starts a new one{shown}")

    # -- stopping ------------------------------------------------------------------------------

    def _wait_exit(self, timeout_s: float | None) -> bool:
        """Waits until the host has exited, without reaping it (see the module's invariant)."""
        if not _POSIX:
            try:
                self._proc.wait(timeout_s)
                return True
            except subprocess.TimeoutExpired:
                return False
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            if self._reaped:
                return True
            try:
                if os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
                    return True
            except ChildProcessError:
                return True
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(0.02)

    def _reap(self) -> None:
        """Kills the host's process group (whatever is left of it), then reaps the host. Idempotent."""
        with self._reap_lock:
            if self._reaped:
                return
            if _POSIX:
                try:
                    os.killpg(self.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            else:
                self._proc.kill()
            self._proc.wait()
            self._reaped = True

    def close(self, timeout_s: float | None) -> None:
        """Asks the host to finish the runs in flight and exit; after ``timeout_s`` seconds, kills it."""
        with self._lock:
            self._closing = True
        if self._write_lock.acquire(timeout=1.0):
            try:
                assert self._proc.stdin is not None
                self._proc.stdin.write(b'{"shutdown":true}\n')
                self._proc.stdin.flush()
            except (OSError, ValueError):
                pass
            finally:
                try:
                    self._proc.stdin.close()  # type: ignore[union-attr]
                except (OSError, ValueError):
                    pass
                self._write_lock.release()
        self._eof.wait(timeout_s)
        self._wait_exit(0.5 if self._eof.is_set() else 0)
        self._reap()
        self._stdout_thread.join(timeout=5)

    def kill(self) -> None:
        """Stops the host at once. Requests in flight fail with HostExitedError."""
        self._reap()
        self._stdout_thread.join(timeout=5)


def _deliver(sink: Sink, item: Union[dict, WasmboxError]) -> None:
    try:
        sink(item)
    except Exception:  # noqa: BLE001 - a caller's sink must never stop the reader
        log.exception("delivering a host reply failed")
