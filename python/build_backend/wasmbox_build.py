"""The wasmbox package's PEP 517 build backend: setuptools.build_meta, plus the host assets.

The wheel carries ``src/wasmbox/_assets``: the TypeScript host compiled to JavaScript (``dist/``),
its ``package.json``, the npm packages it imports at run time (``node_modules/``: the MCP SDK and
its dependencies, zod, the QuickJS runtime that runs JavaScript) and the Pyodide runtime files
(``pyodide/``). Before a wheel or an sdist is built, this backend makes them when they are missing
or were made from other sources (``SOURCE-HASH`` names the sources they were made from), which
takes Node.js and npm, and the repository's ``node_modules`` (installed here with ``npm ci
--ignore-scripts`` when missing).

So ``pip install ./python`` (from a clone) and ``pip install "git+URL#subdirectory=python"``
work. An sdist carries the assets it was built with, so a wheel made from it needs no Node.js;
outside the repository (an unpacked sdist) the assets are never made, only checked.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import build_meta as _setuptools

# Hooks that need no assets come from setuptools as they are.
from setuptools.build_meta import (  # noqa: F401
    get_requires_for_build_editable,
    get_requires_for_build_sdist,
    get_requires_for_build_wheel,
    prepare_metadata_for_build_editable,
    prepare_metadata_for_build_wheel,
)

HERE = Path(__file__).resolve().parent.parent  # python/
ROOT = HERE.parent  # the repository, when HERE is its python/ folder
ASSETS = HERE / "src" / "wasmbox" / "_assets"
STAMP_NAME = "SOURCE-HASH"

#: What the executor loads from the Pyodide package (kept equal to wasmbox._runtime.PYODIDE_FILES).
PYODIDE_FILES = ("pyodide.mjs", "pyodide.asm.mjs", "pyodide.asm.wasm", "python_stdlib.zip", "package.json", "pyodide-lock.json")

#: npm dependencies of the host that the Python package does not vendor: the Python package runs
#: on the PyPI deno package, and takes the Pyodide files it needs into _assets/pyodide.
NOT_VENDORED = ("deno", "pyodide")

#: Files of a vendored npm package that Deno may load: code, JSON, WebAssembly, and the licence.
_VENDORED_SUFFIXES = (".js", ".mjs", ".cjs", ".json", ".wasm")
_LICENCE = re.compile(r"^(licen[cs]e|copying|notice)", re.I)

NODE_MISSING = (
    "wasmbox: building this package needs Node.js (node and npm on PATH; Node 20 or later), because "
    "the wasmbox host is TypeScript that is compiled into the package at build time, together with "
    "the Pyodide runtime files and the npm packages it uses from the repository's node_modules "
    "(installed with `npm ci` when missing). Node.js is needed only to build: the installed package "
    "runs on Deno from the PyPI `deno` package. Either install Node.js and build again, or install "
    "a built wheel (or an sdist, which carries the built files) instead of the source tree, e.g. "
    "one made with `pip wheel ./python` on a machine that has Node.js."
)


# --- the PEP 517 hooks that need the assets ------------------------------------------------------


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    ensure_assets()
    _clean_setuptools_build_dir()
    return _setuptools.build_wheel(wheel_directory, config_settings, metadata_directory)


def build_sdist(sdist_directory, config_settings=None):
    ensure_assets()
    return _setuptools.build_sdist(sdist_directory, config_settings)


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    ensure_assets()
    return _setuptools.build_editable(wheel_directory, config_settings, metadata_directory)


# --- the assets ----------------------------------------------------------------------------------


def _log(message: str) -> None:
    print(f"wasmbox build: {message}", file=sys.stderr, flush=True)


def _fail(message: str) -> None:
    """Ends the build with ``message`` alone (pip shows the backend's output), not a traceback."""
    sys.stdout.flush()
    print(message, file=sys.stderr, flush=True)
    raise SystemExit(1)


def in_repository() -> bool:
    """True when python/ is the Python folder of a wasmbox repository (a clone, not an unpacked sdist)."""
    try:
        manifest = json.loads((ROOT / "package.json").read_text("utf-8"))
    except (OSError, ValueError):
        return False
    return manifest.get("name") == "wasmbox" and (ROOT / "src" / "cli" / "main.ts").is_file() and (ROOT / "tsconfig.json").is_file()


def assets_complete(assets: Path = ASSETS) -> bool:
    return (
        (assets / STAMP_NAME).is_file()
        and (assets / "dist" / "cli" / "bin.js").is_file()
        and (assets / "package.json").is_file()
        and (assets / "node_modules").is_dir()
        and all((assets / "pyodide" / name).is_file() for name in PYODIDE_FILES)
    )


def _source_files() -> list[Path]:
    """Everything the assets are made from: the host's sources, the npm manifests, this backend."""
    files = [ROOT / "package.json", ROOT / "package-lock.json", ROOT / "tsconfig.json", ROOT / "scripts" / "copy-assets.mjs", Path(__file__).resolve()]
    for folder, dirs, names in os.walk(ROOT / "src"):
        dirs[:] = sorted(d for d in dirs if d not in ("node_modules", "__pycache__"))
        files.extend(Path(folder) / name for name in sorted(names))
    return files


def source_hash() -> str:
    digest = hashlib.sha256()
    for path in _source_files():
        relative = os.path.relpath(path, ROOT) if path.is_relative_to(ROOT) else path.name
        digest.update(relative.encode() + b"\0")
        digest.update(path.read_bytes() if path.is_file() else b"<missing>")
        digest.update(b"\0")
    return digest.hexdigest()


def ensure_assets() -> None:
    """Makes src/wasmbox/_assets when it is missing or was made from other sources."""
    if not in_repository():
        if assets_complete():
            _log(f"using the prebuilt assets in {ASSETS}")
            return
        _fail(
            f"wasmbox: {HERE} has no prebuilt host assets (src/wasmbox/_assets) and is not the python/ "
            "folder of a wasmbox repository, so they cannot be made here. Build from a clone of the "
            "repository (pip install ./python, with Node.js installed), or install a built wheel or sdist. "
            "pip older than 21.3 copies a local folder away before building it: upgrade pip "
            "(python -m pip install -U pip) and run pip install ./python again."
        )
    _check_versions()
    wanted = source_hash()
    stamp = ASSETS / STAMP_NAME
    if assets_complete() and stamp.read_text("utf-8").strip() == wanted:
        _log(f"assets up to date ({ASSETS})")
        return
    build_assets(wanted)


def _check_versions() -> None:
    npm_version = json.loads((ROOT / "package.json").read_text("utf-8"))["version"]
    py_version = re.search(r'^version = "(.*)"$', (HERE / "pyproject.toml").read_text("utf-8"), re.M)
    init_version = re.search(r'^__version__ = "(.*)"$', (HERE / "src" / "wasmbox" / "__init__.py").read_text("utf-8"), re.M)
    if py_version is None or py_version.group(1) != npm_version:
        _fail(f"wasmbox: package.json version {npm_version} differs from python/pyproject.toml's ({py_version and py_version.group(1)})")
    if init_version is None or init_version.group(1) != npm_version:
        _fail(f"wasmbox: package.json version {npm_version} differs from python/src/wasmbox/__init__.py's __version__ ({init_version and init_version.group(1)})")


def _run(command: list[str], cwd: Path) -> int:
    _log("$ " + " ".join(command))
    # Output goes to stderr: pip shows it when the build fails (or with -v), and stdout stays clean.
    return subprocess.call(command, cwd=cwd, stdout=sys.stderr, stderr=sys.stderr)


def _node_modules_ready() -> bool:
    modules = ROOT / "node_modules"
    if not (modules / "typescript" / "bin" / "tsc").is_file():
        return False
    manifest = json.loads((ROOT / "package.json").read_text("utf-8"))
    return all((modules / name / "package.json").is_file() for name in manifest.get("dependencies", {}))


def ensure_node_modules(npm: str) -> None:
    """The repository's node_modules (tsc, pyodide, the host's npm dependencies), installed when missing.

    ``npm ci`` first; only when it fails, ``npm install``, after which package-lock.json is put back
    as it was (the build must not change the clone).
    """
    if _node_modules_ready():
        return
    flags = ["--ignore-scripts", "--no-audit", "--no-fund"]
    lock = ROOT / "package-lock.json"
    saved = lock.read_bytes() if lock.is_file() else None
    try:
        if _run([npm, "ci", *flags], ROOT) != 0:
            _log("npm ci failed; trying npm install")
            if _run([npm, "install", *flags], ROOT) != 0:
                _fail(f"wasmbox: `npm install` failed in {ROOT} (its output is above); the build needs the repository's npm dependencies")
    finally:
        if saved is not None and (not lock.is_file() or lock.read_bytes() != saved):
            lock.write_bytes(saved)
            _log("package-lock.json restored as it was")
    if not _node_modules_ready():
        _fail(f"wasmbox: {ROOT / 'node_modules'} still lacks typescript or a dependency of package.json after npm ran")


def _find_package(name: str, start: Path, top: Path) -> Path | None:
    """Node's lookup of package ``name`` from the folder ``start`` (inside ``top``): node_modules upwards."""
    folder = start
    while True:
        candidate = folder / "node_modules" / name
        if (candidate / "package.json").is_file():
            return candidate
        if folder == top or top not in folder.parents:
            return None
        folder = folder.parent


def runtime_packages(top: Path = ROOT) -> list[Path]:
    """The host's npm dependencies and theirs, as installed under top/node_modules (what
    `npm install --omit=dev` would give), minus NOT_VENDORED."""
    manifest = json.loads((top / "package.json").read_text("utf-8"))
    pending = [(name, top, True) for name in manifest.get("dependencies", {}) if name not in NOT_VENDORED]
    found: dict[Path, None] = {}
    while pending:
        name, start, required = pending.pop()
        package = _find_package(name, start, top)
        if package is None:
            if required:
                _fail(f"wasmbox: npm package {name} (needed by {start}) is not installed under {top / 'node_modules'}; run npm ci there")
            continue
        if package in found:
            continue
        found[package] = None
        meta = json.loads((package / "package.json").read_text("utf-8"))
        optional_peers = {peer for peer, how in meta.get("peerDependenciesMeta", {}).items() if how.get("optional")}
        pending.extend((dep, package, True) for dep in meta.get("dependencies", {}))
        pending.extend((dep, package, False) for dep in meta.get("optionalDependencies", {}))
        pending.extend((dep, package, dep not in optional_peers) for dep in meta.get("peerDependencies", {}) if dep not in NOT_VENDORED)
    return sorted(found)


def _vendor_package(package: Path, modules: Path, into: Path) -> None:
    """Copies what Deno loads from one npm package, keeping its place under node_modules/."""
    target = into / package.relative_to(modules)
    for folder, dirs, names in os.walk(package):
        dirs[:] = [d for d in dirs if d != "node_modules"]  # nested packages are vendored on their own
        rel = Path(folder).relative_to(package)
        for name in names:
            if name.endswith(_VENDORED_SUFFIXES) or _LICENCE.match(name):
                (target / rel).mkdir(parents=True, exist_ok=True)
                shutil.copy2(Path(folder) / name, target / rel / name)


def build_assets(stamp: str) -> None:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        _fail(NODE_MISSING)
    ensure_node_modules(npm)
    modules = ROOT / "node_modules"
    staging = ASSETS.with_name(f"_assets.building-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        _log(f"compiling the host into {staging / 'dist'}")
        # Compiled into the package (not the shared dist/), without declarations, and without type
        # checking: that is `npm run build`'s job. The JavaScript (source maps included) is byte
        # for byte npm's, so both share one cached Python snapshot, whose name hashes the executor's files.
        tsc = modules / "typescript" / "bin" / "tsc"
        compile_command = [node, str(tsc), "-p", str(ROOT / "tsconfig.json"), "--outDir", str(staging / "dist"), "--declaration", "false", "--noCheck"]
        if _run(compile_command, ROOT) != 0:
            _fail("wasmbox: compiling the TypeScript host failed (tsc's output is above)")
        bin_js = staging / "dist" / "cli" / "bin.js"
        bin_js.chmod(bin_js.stat().st_mode | 0o111)
        if _run([node, str(ROOT / "scripts" / "copy-assets.mjs"), str(staging / "dist")], ROOT) != 0:
            _fail("wasmbox: scripts/copy-assets.mjs failed (its output is above)")
        # dist/cli/main.js reads ../../package.json for --version; "type": "module" makes dist/*.js ES modules.
        manifest = json.loads((ROOT / "package.json").read_text("utf-8"))
        kept = {key: manifest[key] for key in ("name", "version", "license") if key in manifest}
        (staging / "package.json").write_text(json.dumps({**kept, "type": "module"}, indent=2) + "\n", "utf-8")
        # The npm packages the host imports at run time. The Python package runs the host with
        # --no-config --node-modules-dir=manual, so Deno resolves them here as Node would; the
        # QuickJS packages are found the same way (JavaScript runs from the Python package too).
        packages = runtime_packages()
        for package in packages:
            _vendor_package(package, modules, staging / "node_modules")
        _log(f"vendored {len(packages)} npm packages into node_modules/")
        pyodide = _find_package("pyodide", ROOT, ROOT)
        if pyodide is None:
            _fail(f"wasmbox: the pyodide npm package is not installed under {modules}")
        (staging / "pyodide").mkdir()
        for name in PYODIDE_FILES:
            shutil.copy2(pyodide / name, staging / "pyodide" / name)
        (staging / STAMP_NAME).write_text(stamp + "\n", "utf-8")
        shutil.rmtree(ASSETS, ignore_errors=True)
        staging.rename(ASSETS)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    size = sum(f.stat().st_size for f in ASSETS.rglob("*") if f.is_file())
    _log(f"assets made in {ASSETS} ({size / 1e6:.1f} MB)")


def _clean_setuptools_build_dir() -> None:
    """setuptools copies into python/build/lib and packs what is there: files an earlier build left
    (assets since removed) would end up in the wheel."""
    shutil.rmtree(HERE / "build", ignore_errors=True)
