"""Installing the package the ways python/README.md says, from a fresh clone of the repository's
committed HEAD, with real venvs, real pip, real Node.js and npm at build time, and real Deno:
``pip install ./python`` and ``pip install "git+file://...#subdirectory=python"`` build the
assets and give a working ``wasmbox`` command (every subcommand); an sdist carries the assets, so a
wheel made from it needs no Node.js; a build from source without Node.js fails saying what is
needed. The installed commands run with the ambient PATH (run-tests.sh takes Node.js off it);
builds get WASMBOX_TEST_BUILD_PATH (the PATH run-tests.sh started with)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import textwrap
import time
import zipfile
from pathlib import Path
from typing import Iterator

import pytest

import wasmbox

from conftest import alive, children_of, wait_until

REPO = Path(__file__).resolve().parents[2]
BUILD_PATH = os.environ.get("WASMBOX_TEST_BUILD_PATH") or os.environ.get("PATH", "")
NODE_NAMES = ("node", "nodejs", "npm", "npx", "corepack")

pytestmark = pytest.mark.skipif(
    not (REPO / ".git").exists() or shutil.which("git") is None or shutil.which("node", path=BUILD_PATH) is None or shutil.which("npm", path=BUILD_PATH) is None,
    reason="needs a git checkout of the repository, git, and node and npm on WASMBOX_TEST_BUILD_PATH (or PATH)",
)


def clone(into: Path, share_node_modules: bool) -> Path:
    """A fresh clone of the repository's committed HEAD; with ``share_node_modules`` its node_modules
    is a symlink to the repository's, so the build does not install npm packages again."""
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(into)], check=True, timeout=120)
    if share_node_modules and (REPO / "node_modules").is_dir():
        (into / "node_modules").symlink_to(REPO / "node_modules")
    return into


def build_env(path: str = BUILD_PATH) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PIP_REQUIRE_VIRTUALENV")}
    env["PATH"] = path
    return env


def runtime_env() -> dict[str, str]:
    """What an installed ``wasmbox`` runs with: the ambient environment (its snapshot cache, a PATH
    without Node.js under run-tests.sh), minus overrides that would point it at other host files."""
    return {k: v for k, v in os.environ.items() if k not in ("WASMBOX_DIST_DIR", "WASMBOX_PYODIDE_DIR", "WASMBOX_DENO", "VIRTUAL_ENV", "PYTHONPATH")}


def path_without_node(path: str, scratch: Path) -> str:
    """``path`` with node, npm and npx gone: each directory holding one is replaced by a folder of
    symlinks to everything else in it (what run-tests.sh does)."""
    parts = []
    for n, folder in enumerate(path.split(os.pathsep)):
        if not os.path.isdir(folder):
            continue
        if any(os.path.exists(os.path.join(folder, name)) for name in NODE_NAMES):
            shadow = scratch / f"path-{n}"
            shadow.mkdir(parents=True)
            for entry in os.listdir(folder):
                if entry not in NODE_NAMES:
                    (shadow / entry).symlink_to(os.path.join(folder, entry))
            folder = str(shadow)
        parts.append(folder)
    joined = os.pathsep.join(parts)
    assert shutil.which("node", path=joined) is None and shutil.which("npm", path=joined) is None
    return joined


def make_venv(where: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", str(where)], check=True, timeout=120)
    return where / "bin"


def pip(bin_dir: Path, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(bin_dir / "python"), "-m", "pip", "--disable-pip-version-check", *args],
        cwd=cwd, env=env if env is not None else build_env(), capture_output=True, text=True, timeout=timeout,
    )


def wasmbox_cmd(bin_dir: Path, *args: str, input: str | None = None, timeout: float = 120, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(bin_dir / "wasmbox"), *args], input=input, capture_output=True, text=True, timeout=timeout, env=runtime_env(), cwd=cwd)


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Clones and venvs: about 0.5 GB, removed when the module's tests are done."""
    where = tmp_path_factory.mktemp("install")
    yield where
    shutil.rmtree(where, ignore_errors=True)


@pytest.fixture(scope="module")
def checkout(work: Path) -> Path:
    return clone(work / "clone", share_node_modules=True)


@pytest.fixture(scope="module")
def installed(work: Path, checkout: Path) -> Path:
    """A venv into which ``pip install ./python`` (the README's command, run in the clone) installed wasmbox."""
    bin_dir = make_venv(work / "venv")
    started = time.monotonic()
    done = pip(bin_dir, "install", "./python", cwd=checkout)
    assert done.returncode == 0, done.stdout + done.stderr
    print(f"pip install ./python from a fresh clone took {time.monotonic() - started:.1f} s")
    return bin_dir


def test_pip_install_dot_python_in_a_fresh_clone_gives_a_wasmbox_command_that_runs_python(installed: Path, checkout: Path, tmp_path: Path) -> None:
    done = wasmbox_cmd(installed, "run", "-c", "print(1)", cwd=tmp_path)
    assert (done.returncode, done.stdout) == (0, "1\n"), done.stderr
    # The package has its assets, and the build changed no tracked file of the clone (package-lock.json included).
    site = subprocess.run([str(installed / "python"), "-c", "import wasmbox, pathlib; print(pathlib.Path(wasmbox.__file__).parent)"], capture_output=True, text=True, env=runtime_env(), cwd=tmp_path)
    assets = Path(site.stdout.strip()) / "_assets"
    assert (assets / "dist" / "cli" / "bin.js").is_file() and (assets / "pyodide" / "pyodide.asm.wasm").is_file()
    assert (assets / "node_modules" / "@modelcontextprotocol" / "sdk" / "package.json").is_file()
    changed = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=checkout, capture_output=True, text=True, check=True)
    assert changed.stdout == ""


def test_the_wasmbox_command_passes_stdin_stdout_and_the_exit_status_through(installed: Path, tmp_path: Path) -> None:
    code = "import sys\ndata = sys.stdin.read()\nprint(data[::-1], sys.argv[1:])\nsys.exit(3)"
    done = wasmbox_cmd(installed, "run", "-c", code, "--", "x", "y", input="abc", cwd=tmp_path)
    assert (done.returncode, done.stdout) == (3, "cba ['x', 'y']\n"), done.stderr
    program = tmp_path / "prog.py"
    program.write_text("print(open('in.txt').read().upper())\nopen('out.txt', 'w').write('made')\n")
    (tmp_path / "in.txt").write_text("file")
    done = wasmbox_cmd(installed, "run", "--file", str(tmp_path / "in.txt") + ":in.txt", "--out", str(tmp_path / "out"), str(program), cwd=tmp_path)
    assert (done.returncode, done.stdout) == (0, "FILE\n"), done.stderr
    assert (tmp_path / "out" / "out.txt").read_text() == "made"
    timed_out = wasmbox_cmd(installed, "run", "--timeout", "1s", "-c", "while True: pass", cwd=tmp_path)
    assert timed_out.returncode == 124
    usage = wasmbox_cmd(installed, "run", "--bogus", cwd=tmp_path)
    assert usage.returncode == 2 and "unknown option --bogus" in usage.stderr


def test_wasmbox_version_and_help_answer_like_the_npm_command(installed: Path, tmp_path: Path) -> None:
    version = wasmbox_cmd(installed, "--version", cwd=tmp_path)
    assert (version.returncode, version.stdout) == (0, f"wasmbox {wasmbox.__version__}\n")
    usage = wasmbox_cmd(installed, "--help", cwd=tmp_path)
    assert usage.returncode == 0 and "usage: wasmbox COMMAND" in usage.stdout, usage.stdout
    assert all(f"\n  {command} " in usage.stdout for command in ("run", "serve", "mcp", "languages", "packages")), usage.stdout
    run_usage = wasmbox_cmd(installed, "run", "--help", cwd=tmp_path)
    assert run_usage.returncode == 0 and run_usage.stdout.startswith("usage: wasmbox run") and "--timeout T" in run_usage.stdout
    # python -m wasmbox is the same command.
    same = subprocess.run([str(installed / "python"), "-m", "wasmbox", "--version"], capture_output=True, text=True, env=runtime_env(), cwd=tmp_path)
    assert same.stdout == version.stdout


def test_languages_lists_python_and_javascript_as_installed_and_javascript_runs(installed: Path, tmp_path: Path) -> None:
    listed = wasmbox_cmd(installed, "languages", "--json", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    by_name = {entry["name"]: entry for entry in json.loads(listed.stdout)}
    assert by_name["python"]["installed"] and by_name["python"]["version"].startswith("CPython 3.14")
    assert by_name["javascript"]["installed"] and by_name["javascript"]["version"].startswith("QuickJS")
    table = wasmbox_cmd(installed, "languages", cwd=tmp_path).stdout
    assert "not installed: included" not in table
    done = wasmbox_cmd(installed, "run", "--language", "javascript", "-c", "console.log([1, 2, 3].map((x) => x * 2).join(','))", cwd=tmp_path)
    assert (done.returncode, done.stdout) == (0, "2,4,6\n"), done.stderr
    script = tmp_path / "main.js"
    script.write_text("const fs = require('fs');\nfs.writeFileSync('o.txt', 'js');\nconsole.log(6 * 7);\n")
    by_extension = wasmbox_cmd(installed, "run", "--out", str(tmp_path / "out"), str(script), cwd=tmp_path)
    assert (by_extension.returncode, by_extension.stdout) == (0, "42\n"), by_extension.stderr


MCP_CLIENT = textwrap.dedent(
    """
    import asyncio, json, os, sys
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    async def main():
        server = StdioServerParameters(command=sys.argv[1], args=["mcp"], env=dict(os.environ))
        async with stdio_client(server) as (read, write):
            async with ClientSession(read, write) as session:
                init = await session.initialize()
                info = getattr(init, "serverInfo", None) or getattr(init, "server_info")
                tools = await session.list_tools()
                called = await session.call_tool("run_code", {"code": "print(6 * 7)"})
                texts = [item.text for item in called.content if getattr(item, "type", "") == "text"]
                is_error = getattr(called, "isError", None)
                if is_error is None:
                    is_error = getattr(called, "is_error", None)
                print(json.dumps({"server": info.name, "version": info.version, "tools": [t.name for t in tools.tools], "texts": texts, "is_error": is_error}))

    asyncio.run(main())
    """
)


def test_wasmbox_mcp_serves_the_official_mcp_client_over_stdio(installed: Path, tmp_path: Path) -> None:
    added = pip(installed, "install", "--quiet", "mcp")
    assert added.returncode == 0, added.stdout + added.stderr
    client = tmp_path / "client.py"
    client.write_text(MCP_CLIENT)
    done = subprocess.run([str(installed / "python"), str(client), str(installed / "wasmbox")], capture_output=True, text=True, timeout=180, env=runtime_env(), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert (answer["server"], answer["version"]) == ("wasmbox", wasmbox.__version__)
    assert sorted(answer["tools"]) == ["run_code", "session_reset"]
    assert answer["is_error"] is False and any("42" in text for text in answer["texts"]), answer


def test_serve_stdio_and_serve_http_work_from_the_wasmbox_command(installed: Path, tmp_path: Path) -> None:
    done = wasmbox_cmd(installed, "serve", "--stdio", "--pool", "1", input='{"id": 1, "code": "6 * 7"}\n', cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    reply = json.loads(done.stdout.splitlines()[0])
    assert (reply["id"], reply["status"], reply["value"]) == (1, "ok", 42), reply
    server = subprocess.Popen([str(installed / "wasmbox"), "serve", "--http", "0", "--pool", "1"], stderr=subprocess.PIPE, text=True, env=runtime_env(), cwd=tmp_path)
    try:
        line = server.stderr.readline()
        assert "http://127.0.0.1:" in line, line
        url = line.split()[-1].rstrip("/")
        import urllib.request

        request = urllib.request.Request(f"{url}/v1/run", data=b'{"code": "print(2 + 2)"}', headers={"content-type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            body = json.load(response)
        assert (body["status"], body["stdout"]) == ("ok", "4\n"), body
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 128 + signal.SIGTERM  # drained, then the conventional status
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
        server.stderr.close()


def test_packages_add_list_and_remove_work_from_the_wasmbox_command(installed: Path, tmp_path: Path) -> None:
    wheelhouse = tmp_path / "wheelhouse"
    added = wasmbox_cmd(installed, "packages", "add", "tabulate", "--wheelhouse", str(wheelhouse), timeout=300, cwd=tmp_path)
    assert added.returncode == 0, added.stderr
    listed = wasmbox_cmd(installed, "packages", "list", "--json", "--wheelhouse", str(wheelhouse), cwd=tmp_path)
    assert listed.returncode == 0 and "tabulate" in listed.stdout, listed.stdout + listed.stderr
    used = wasmbox_cmd(installed, "run", "--package", "tabulate", "--wheelhouse", str(wheelhouse), "-c", "import tabulate\nprint(tabulate.tabulate([[1, 2]]))", cwd=tmp_path)
    assert (used.returncode, used.stdout) == (0, "-  -\n1  2\n-  -\n"), used.stderr
    removed = wasmbox_cmd(installed, "packages", "remove", "tabulate", "--wheelhouse", str(wheelhouse), cwd=tmp_path)
    assert removed.returncode == 0, removed.stderr
    assert "tabulate" not in wasmbox_cmd(installed, "packages", "list", "--wheelhouse", str(wheelhouse), cwd=tmp_path).stdout


def _started_mcp(bin_dir: Path, cwd: Path) -> subprocess.Popen[str]:
    """``wasmbox mcp`` that has answered initialize and warmed an executor."""
    server = subprocess.Popen([str(bin_dir / "wasmbox"), "mcp", "--pool", "1"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=runtime_env(), cwd=cwd)
    assert server.stdin is not None and server.stdout is not None
    server.stdin.write(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}}}) + "\n")
    server.stdin.flush()
    assert json.loads(server.stdout.readline())["result"]["serverInfo"]["name"] == "wasmbox"
    wait_until(lambda: len(children_of(server.pid)) > 0, 60, "the MCP server's warm executor")
    return server


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_to_the_wasmbox_command_stops_the_host_and_its_executors(installed: Path, tmp_path: Path, signum: int) -> None:
    server = _started_mcp(installed, tmp_path)
    try:
        # The command is the host itself (the Python launcher exec'd Deno): no launcher in between
        # that a signal could stop while the host lives on.
        assert "deno" in os.path.basename(os.readlink(f"/proc/{server.pid}/exe"))
        descendants = children_of(server.pid)
        server.send_signal(signum)
        assert server.wait(timeout=30) == 128 + signum  # a clean shutdown, then the conventional status
        wait_until(lambda: not any(alive(pid) for pid in descendants), 15, "the executors to exit")
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def test_killing_the_wasmbox_command_leaves_no_process_behind(installed: Path, tmp_path: Path) -> None:
    server = _started_mcp(installed, tmp_path)
    descendants = children_of(server.pid)
    server.kill()
    server.wait()
    wait_until(lambda: not any(alive(pid) for pid in descendants), 15, "the executors to exit after their host was killed")


def test_main_with_arguments_runs_the_host_as_a_child_that_gets_the_signal_and_reports_it(installed: Path, tmp_path: Path) -> None:
    # The library form, wasmbox.__main__.main([...]): no exec; SIGTERM is passed on to the host.
    launcher = subprocess.Popen(
        [str(installed / "python"), "-c", "import sys, wasmbox.__main__ as m; sys.exit(m.main(['mcp', '--pool', '1']))"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=runtime_env(), cwd=tmp_path,
    )
    try:
        assert launcher.stdin is not None and launcher.stdout is not None
        launcher.stdin.write(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}) + "\n")
        launcher.stdin.flush()
        assert json.loads(launcher.stdout.readline())["id"] == 1
        [host] = [pid for pid in _direct_children(launcher.pid) if "deno" in _exe(pid)]
        everything = [host, *children_of(host)]
        launcher.send_signal(signal.SIGTERM)
        assert launcher.wait(timeout=30) == 128 + signal.SIGTERM  # the host drained and exited 143, and main returned that
        wait_until(lambda: not any(alive(pid) for pid in everything), 15, "the host and its executors to exit")
        # A launcher killed outright takes its host with it (PR_SET_PDEATHSIG).
        second = subprocess.Popen(
            [str(installed / "python"), "-c", "import sys, wasmbox.__main__ as m; sys.exit(m.main(['serve', '--stdio', '--pool', '1']))"],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=runtime_env(), cwd=tmp_path,
        )
        wait_until(lambda: any("deno" in _exe(pid) for pid in _direct_children(second.pid)), 60, "the host child")
        hosts = [pid for pid in _direct_children(second.pid) if "deno" in _exe(pid)]
        second.kill()
        second.wait()
        wait_until(lambda: not any(alive(pid) for pid in hosts), 15, "the host to exit after its launcher was killed")
        assert second.stdin is not None
        second.stdin.close()
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait()


def _direct_children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found.extend(int(child) for child in (task / "children").read_text().split())
        except OSError:
            pass
    return found


def _exe(pid: int) -> str:
    try:
        return os.path.basename(os.readlink(f"/proc/{pid}/exe"))
    except OSError:
        return ""


def test_pip_install_from_a_git_url_with_subdirectory_python_builds_a_working_package(work: Path, checkout: Path, tmp_path: Path) -> None:
    # pip clones the repository itself (without node_modules): the backend installs the npm packages.
    bin_dir = make_venv(work / "venv-git")
    started = time.monotonic()
    done = pip(bin_dir, "install", "-v", f"git+file://{checkout}#subdirectory=python", cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    print(f"pip install git+file://...#subdirectory=python took {time.monotonic() - started:.1f} s")
    output = done.stdout + done.stderr
    assert re.search(r"wasmbox build: \$ \S*npm ci --ignore-scripts", output) and "wasmbox build: assets made in" in output
    ran = wasmbox_cmd(bin_dir, "run", "-c", "print(1)", cwd=tmp_path)
    assert (ran.returncode, ran.stdout) == (0, "1\n"), ran.stderr
    languages = json.loads(wasmbox_cmd(bin_dir, "languages", "--json", cwd=tmp_path).stdout)
    assert {entry["name"] for entry in languages if entry["installed"]} >= {"python", "javascript"}


@pytest.fixture(scope="module")
def no_node_path(work: Path) -> str:
    return path_without_node(BUILD_PATH, work / "no-node-path")


def test_a_build_from_source_without_node_fails_saying_what_is_needed(work: Path, no_node_path: str, tmp_path: Path) -> None:
    pristine = clone(work / "clone-no-node", share_node_modules=True)
    done = subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", "wheel", "--no-deps", "-w", str(tmp_path), "./python"],
        cwd=pristine, env=build_env(no_node_path), capture_output=True, text=True, timeout=600,
    )
    output = done.stdout + done.stderr
    assert done.returncode != 0 and not list(tmp_path.glob("*.whl"))
    assert "building this package needs Node.js (node and npm on PATH" in output, output
    assert "install a built wheel (or an sdist" in output and "Traceback" not in output
    assert not list((pristine / "python" / "src" / "wasmbox").glob("_assets*"))


def test_assets_made_from_the_same_sources_are_reused_without_node_and_stale_ones_are_not(installed: Path, checkout: Path, work: Path, no_node_path: str, tmp_path: Path) -> None:
    # A clone whose _assets were made from its own sources (copied from the installed clone): no
    # Node.js needed. After a source changes, the assets are stale, and the build needs Node.js again.
    other = clone(work / "clone-prebuilt", share_node_modules=False)
    shutil.copytree(checkout / "python" / "src" / "wasmbox" / "_assets", other / "python" / "src" / "wasmbox" / "_assets", symlinks=True)
    command = [sys.executable, "-m", "pip", "--disable-pip-version-check", "wheel", "-v", "--no-deps", "-w", str(tmp_path / "wheels"), "./python"]
    fresh = subprocess.run(command, cwd=other, env=build_env(no_node_path), capture_output=True, text=True, timeout=600)
    assert fresh.returncode == 0, fresh.stdout[-3000:] + fresh.stderr[-3000:]
    assert "wasmbox build: assets up to date" in fresh.stdout + fresh.stderr
    source = other / "src" / "cli" / "languages-command.ts"
    source.write_text(source.read_text() + "\n// changed\n")
    stale = subprocess.run(command, cwd=other, env=build_env(no_node_path), capture_output=True, text=True, timeout=600)
    assert stale.returncode != 0 and "building this package needs Node.js" in stale.stdout + stale.stderr


def test_an_sdist_carries_the_assets_and_a_wheel_made_from_it_needs_no_node(installed: Path, checkout: Path, no_node_path: str, tmp_path: Path) -> None:
    got_build = pip(installed, "install", "--quiet", "build")
    assert got_build.returncode == 0, got_build.stdout + got_build.stderr
    made = subprocess.run([str(installed / "python"), "-m", "build", "--sdist", "--outdir", str(tmp_path / "sdist"), "./python"], cwd=checkout, env=build_env(), capture_output=True, text=True, timeout=600)
    assert made.returncode == 0, made.stdout[-3000:] + made.stderr[-3000:]
    [sdist] = (tmp_path / "sdist").glob("wasmbox-*.tar.gz")
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert {"build_backend/wasmbox_build.py", "src/wasmbox/_assets/SOURCE-HASH", "src/wasmbox/_assets/dist/cli/bin.js", "src/wasmbox/_assets/pyodide/pyodide.asm.wasm"} <= names
    assert any(name.startswith("src/wasmbox/_assets/node_modules/quickjs-emscripten-core/") for name in names)
    # pip builds the wheel in a temporary copy of the unpacked sdist, outside any repository.
    wheel_dir = tmp_path / "wheel"
    built = subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", "wheel", "--no-deps", "-w", str(wheel_dir), str(sdist)],
        env=build_env(no_node_path), capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    [wheel] = wheel_dir.glob("wasmbox-*.whl")
    unpacked = tmp_path / "unpacked"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(unpacked)
        entry_points = archive.read(next(n for n in archive.namelist() if n.endswith("entry_points.txt"))).decode()
    assert "wasmbox = wasmbox.__main__:main" in entry_points
    env = {**runtime_env(), "PYTHONPATH": str(unpacked), "PATH": no_node_path}
    ran = subprocess.run([str(installed / "python"), "-m", "wasmbox", "run", "-c", "import wasmbox\nprint(2)"], capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path)
    assert (ran.returncode, ran.stdout) == (0, "2\n"), ran.stderr


def test_a_copy_of_python_outside_the_repository_without_assets_fails_saying_why(tmp_path: Path) -> None:
    # What pip older than 21.3 does with a local folder: it copies it away before building.
    copy = tmp_path / "python"
    shutil.copytree(REPO / "python", copy, ignore=shutil.ignore_patterns("_assets", "build", "dist", "*.egg-info", "__pycache__"))
    done = subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", "wheel", "--no-deps", "-w", str(tmp_path / "wheels"), str(copy)],
        env=build_env(), capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )
    output = done.stdout + done.stderr
    assert done.returncode != 0 and "has no prebuilt host assets" in output and "upgrade pip" in output, output


def test_the_readme_install_section_gives_the_commands_these_tests_run() -> None:
    readme = (REPO / "python" / "README.md").read_text("utf-8")
    install = readme.split("## Install", 1)[1].split("\n## ", 1)[0]
    assert "pip install ./python\n" in install
    assert 'pip install "git+REPOSITORY_URL#subdirectory=python"' in install
    assert "Node.js 20 or later and npm on PATH at build time" in " ".join(install.replace("*", "").split())
