"""The ``wasmbox`` command and ``python -m wasmbox ARGS``: the wasmbox CLI on the bundled host.

Every subcommand of the npm ``wasmbox`` command: ``run``, ``serve --stdio``, ``serve --http``,
``mcp``, ``languages``, ``packages add/list/remove``, ``--help``, ``--version``.

On POSIX the host's own CLI replaces this process (exec), on Deno: stdin, stdout, stderr, signals
and the exit status are exactly the npm command's, and there is no Python process left that could
be killed while the host lives on. Called as ``main(args)`` (or where there is no exec), the host
runs as a child instead: SIGINT and SIGTERM are passed on to it, on Linux it gets SIGTERM when
this process dies, and a death by signal N is returned as exit status 128 + N, as a shell shows it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

from ._errors import WasmboxError
from ._runtime import find_runtime


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    try:
        runtime = find_runtime()
    except WasmboxError as error:
        sys.stderr.write(f"wasmbox: {error.message} [{error.code}]\n")
        return 70
    command = runtime.command(args)
    env = runtime.env()
    if os.name == "posix" and argv is None:
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(command[0], command, env)  # does not return
    return _run_child(command, env)


def _die_with_parent() -> None:
    """In the child before exec (Linux): SIGTERM when the process that started it dies."""
    try:
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except Exception:  # noqa: BLE001 - best effort: without it the host still ends when its stdin closes
        pass


def _run_child(command: list[str], env: dict[str, str]) -> int:
    proc = subprocess.Popen(command, env=env, preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, lambda received, _frame: proc.send_signal(received))
    try:
        while True:
            try:
                code = proc.wait()
                break
            except KeyboardInterrupt:  # a SIGINT that came before the handler was in place
                proc.send_signal(signal.SIGINT)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 128 - code if code < 0 else code


if __name__ == "__main__":
    sys.exit(main())
