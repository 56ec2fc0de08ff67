"""``python -m wasmbox ARGS``: the wasmbox CLI (``run``, ``serve --stdio``, ``--version``), on the bundled host.

The host's own CLI runs on Deno in place of this process, so stdin, stdout, stderr, signals and
the exit status are exactly the npm ``wasmbox`` command's.
"""

from __future__ import annotations

import os
import subprocess
import sys

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
    return subprocess.run(command, env=env).returncode


if __name__ == "__main__":
    sys.exit(main())
