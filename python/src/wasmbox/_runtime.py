"""Where the bundled host code, the Pyodide files and the Deno binary are, and how to start the host."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from ._errors import DenoNotFoundError, ExecutorStartFailedError

__all__ = ["HostRuntime", "find_runtime", "PYODIDE_FILES"]

#: What the executor loads from the Pyodide directory (see src/host/runtime-paths.ts).
PYODIDE_FILES = ("pyodide.mjs", "pyodide.asm.mjs", "pyodide.asm.wasm", "python_stdlib.zip", "package.json", "pyodide-lock.json")

_ASSETS = Path(__file__).resolve().parent / "_assets"


@dataclass(frozen=True)
class HostRuntime:
    deno: str
    #: The host's dist/ tree (its CLI is dist/cli/bin.js; the executor reads dist/ itself).
    dist_dir: Path
    pyodide_dir: Path

    @property
    def cli(self) -> Path:
        return self.dist_dir / "cli" / "bin.js"

    def command(self, args: list[str]) -> list[str]:
        # -A: the host is trusted code that spawns executors, reads its assets and writes the
        # snapshot cache; each executor it starts gets no permissions at all. --no-config: a
        # deno.json or package.json in the caller's working directory must not change how it loads.
        # --node-modules-dir=manual: the host's npm packages (the MCP SDK, zod, QuickJS, vendored by
        # the build next to dist/) resolve from the node_modules beside it, as under Node.
        modules = ["--node-modules-dir=manual"] if (self.dist_dir.parent / "node_modules").is_dir() else []
        return [self.deno, "run", "-A", "--no-config", *modules, str(self.cli), *args]

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        env = dict(os.environ if base is None else base)
        env["WASMBOX_PYODIDE_DIR"] = str(self.pyodide_dir)
        # Executors run on the same binary as the host (the host would use Deno.execPath() anyway).
        env["WASMBOX_DENO"] = self.deno
        env.setdefault("DENO_NO_UPDATE_CHECK", "1")
        env.setdefault("DENO_NO_PROMPT", "1")
        return env


def _find_deno(explicit: str | None) -> str:
    if explicit:
        if not os.path.isfile(explicit):
            raise DenoNotFoundError(f"deno binary {explicit} does not exist")
        return explicit
    from_env = os.environ.get("WASMBOX_DENO")
    if from_env:
        if not os.path.isfile(from_env):
            raise DenoNotFoundError(f"WASMBOX_DENO points at {from_env}, which does not exist")
        return from_env
    try:
        from deno import find_deno_bin  # the PyPI `deno` package ships the binary as a script

        return os.fsdecode(find_deno_bin())
    except (ImportError, FileNotFoundError):
        pass
    on_path = shutil.which("deno")
    if on_path:
        return on_path
    raise DenoNotFoundError("no Deno binary found: pip install 'deno>=2.9,<3', or set WASMBOX_DENO to a deno executable")


def find_runtime(deno: str | None = None) -> HostRuntime:
    """Resolves the runtime: WASMBOX_DIST_DIR / WASMBOX_PYODIDE_DIR override the bundled files."""
    dist_dir = Path(os.environ.get("WASMBOX_DIST_DIR") or _ASSETS / "dist")
    pyodide_dir = Path(os.environ.get("WASMBOX_PYODIDE_DIR") or _ASSETS / "pyodide")
    if not (dist_dir / "cli" / "bin.js").is_file():
        raise ExecutorStartFailedError(
            f"the wasmbox host code is missing ({dist_dir / 'cli' / 'bin.js'}): this wasmbox was installed without its "
            "built assets; install it with pip from a clone (pip install ./python) or a built wheel, "
            "or set WASMBOX_DIST_DIR to a built dist/ directory"
        )
    missing = [name for name in PYODIDE_FILES if not (pyodide_dir / name).is_file()]
    if missing:
        raise ExecutorStartFailedError(f"the Pyodide runtime files are missing from {pyodide_dir}: {', '.join(missing)}")
    return HostRuntime(deno=_find_deno(deno), dist_dir=dist_dir, pyodide_dir=pyodide_dir)
