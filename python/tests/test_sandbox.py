"""The Python client against the real host subprocess (Deno, real executors, real Pyodide)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import wasmbox
from conftest import alive, assets_dir, children_of, kill, pids_with, wait_until
from wasmbox import (
    AsyncSandbox,
    DenoNotFoundError,
    ExecutorStartFailedError,
    GuestError,
    GuestRaisedError,
    HostExitedError,
    InvalidPathError,
    InvalidRequestError,
    MemoryLimitExceededError,
    OutputLimitExceededError,
    RunCancelledError,
    RunCrashedError,
    RunFailedError,
    RunResult,
    RunTimeoutError,
    Sandbox,
    SandboxClosedError,
    UnsupportedLanguageError,
    WasmboxError,
    run_code,
    run_fs,
)


def test_run_code_prints_and_returns_every_result_field() -> None:
    started = time.perf_counter()
    result = run_code("import sys\nprint(1 + 1)\nprint('warn', file=sys.stderr)\n{'a': [1, 2.5, None]}")
    print(f"first run_code on a new host: {time.perf_counter() - started:.2f} s")
    assert result == RunResult(
        status="ok",
        exit_code=0,
        stdout="2\n",
        stderr="warn\n",
        value={"a": [1, 2.5, None]},
        value_repr="{'a': [1, 2.5, None]}",
        error=None,
        files={},
        duration_ms=result.duration_ms,
        cpu_time_ms=result.cpu_time_ms,
        value_json={"a": [1, 2.5, None]},
    )
    assert isinstance(result.cpu_time_ms, float) and result.cpu_time_ms >= 0, "the CPU the run used (Linux /proc)"
    assert isinstance(result.duration_ms, float) and result.duration_ms > 0
    assert result.ok and result.raise_for_status() is result
    with pytest.raises(Exception):
        result.status = "error"  # type: ignore[misc]  # frozen


def test_run_fs_runs_a_file_among_the_files_and_returns_files_as_bytes() -> None:
    result = run_fs(
        "app/main.py",
        {
            "app/main.py": "import helper\nhelper.go()",
            "app/helper.py": "def go():\n    open('out/raw.bin', 'wb').write(bytes([0, 255, 128]) + open('in.bin', 'rb').read())\n",
            "in.bin": b"\xff\xfe",
            "out/.keep": "",
        },
    )
    assert result.ok, result
    assert result.files == {"out/raw.bin": b"\x00\xff\x80\xff\xfe"}


def test_stdin_is_read_as_text_or_bytes(sandbox: Sandbox) -> None:
    text = sandbox.run("import sys; sys.stdin.read()", stdin="h\u00e9llo\n")
    raw = sandbox.run("import sys; sys.stdin.buffer.read().hex()", stdin=b"\x00\xff")
    assert (text.value, raw.value) == ("h\u00e9llo\n", "00ff")


def test_on_stdout_and_on_stderr_get_the_output_in_order_in_the_calling_thread(sandbox: Sandbox) -> None:
    chunks: list[tuple[str, str, int]] = []
    result = sandbox.run(
        "import sys\nfor i in range(3):\n    print(i, flush=True)\n    print('e', i, file=sys.stderr, flush=True)",
        on_stdout=lambda c: chunks.append(("out", c, threading.get_ident())),
        on_stderr=lambda c: chunks.append(("err", c, threading.get_ident())),
    )
    assert "".join(c for kind, c, _ in chunks if kind == "out") == result.stdout == "0\n1\n2\n"
    assert "".join(c for kind, c, _ in chunks if kind == "err") == result.stderr == "e 0\ne 1\ne 2\n"
    assert {tid for *_, tid in chunks} == {threading.get_ident()}


def test_each_non_ok_status_raises_its_own_error_from_raise_for_status(sandbox: Sandbox) -> None:
    cases = {
        "error": (dict(code="raise KeyError('k')"), GuestRaisedError),
        "timeout": (dict(code="while True: pass", timeout_ms=300), RunTimeoutError),
        "memory_limit": (dict(code="x = bytearray(300 * 1024 * 1024)", memory_limit_bytes=64 * 1024 * 1024), MemoryLimitExceededError),
        "output_limit": (dict(code="print('y' * 5000)", max_output_bytes=1000), OutputLimitExceededError),
    }
    with ThreadPoolExecutor(len(cases)) as pool:
        results = dict(zip(cases, pool.map(lambda kw: sandbox.run(**kw), [kw for kw, _ in cases.values()])))
    for status, (_, error_class) in cases.items():
        result = results[status]
        assert result.status == status and not result.ok
        assert isinstance(result.error, GuestError)
        with pytest.raises(error_class) as caught:
            result.raise_for_status()
        assert isinstance(caught.value, RunFailedError) and caught.value.result is result
    assert results["error"].exit_code == 1 and results["error"].error.type == "KeyError"
    assert "KeyError: 'k'" in results["error"].error.traceback
    assert isinstance(RunTimeoutError(results["timeout"]), TimeoutError)
    assert len(results["output_limit"].stdout.encode()) <= 1000


def test_cpu_time_ms_stops_a_busy_loop_as_a_timeout_naming_the_cpu_limit_and_spares_a_sleep(sandbox: Sandbox) -> None:
    with ThreadPoolExecutor(2) as pool:
        spun, slept = pool.map(
            lambda kw: sandbox.run(**kw),
            [dict(code="while True: pass", cpu_time_ms=300, timeout_ms=30_000), dict(code="import time\ntime.sleep(1)\n'rested'", cpu_time_ms=300)],
        )
    assert spun.status == "timeout", spun
    assert spun.error is not None and spun.error.type == "CpuTimeLimit" and "cpuTimeMs" in spun.error.message
    assert spun.cpu_time_ms is not None and spun.cpu_time_ms >= 300
    with pytest.raises(RunTimeoutError):
        spun.raise_for_status()
    assert (slept.status, slept.value) == ("ok", "rested")
    assert slept.cpu_time_ms is not None and slept.cpu_time_ms < 300


def test_cpu_time_ms_on_run_code_and_the_async_sandbox() -> None:
    result = run_code("while True: pass", cpu_time_ms=300, timeout_ms=30_000)
    assert (result.status, result.error and result.error.type) == ("timeout", "CpuTimeLimit")

    async def main() -> RunResult:
        async with AsyncSandbox() as sb:
            return await sb.run("while True: pass", cpu_time_ms=300, timeout_ms=30_000)

    result = asyncio.run(main())
    assert (result.status, result.error and result.error.type) == ("timeout", "CpuTimeLimit")


def test_cpu_time_ms_is_checked_like_the_other_limits(sandbox: Sandbox) -> None:
    with pytest.raises(InvalidRequestError, match="cpuTimeMs must be between 1 and"):
        sandbox.run("1", cpu_time_ms=0)


def test_a_killed_executor_gives_status_crash(sandbox: Sandbox) -> None:
    started = threading.Event()
    outcome: list[RunResult] = []
    worker = threading.Thread(
        target=lambda: outcome.append(
            sandbox.run("print('go', flush=True)\nimport time\ntime.sleep(60)", timeout_ms=90_000, on_stdout=lambda _: started.set())
        )
    )
    worker.start()
    assert started.wait(60)
    host = sandbox.host_pid
    assert host is not None
    executors = [pid for pid in children_of(host) if pid in set(pids_with("executor/main.js"))]
    assert executors, "the host has executor processes"
    for pid in executors:
        kill(pid)
    worker.join(60)
    (result,) = outcome
    assert result.status == "crash" and result.exit_code is None
    assert result.error is not None and result.error.type == "Crash"
    with pytest.raises(RunCrashedError):
        result.raise_for_status()
    # The warm executors were killed too: once the host has reaped them (so knows), runs go on.
    wait_until(lambda: not any(Path(f"/proc/{pid}").exists() for pid in executors), 30, "the host to reap the killed executors")
    assert sandbox.run("'still works'").value == "still works"


def test_cancelled_results_decode_and_raise_their_error() -> None:
    # Its wire form; test_cancellation.py gets one from a real host stopped by SIGTERM.
    result = RunResult.from_wire(
        {"status": "cancelled", "exitCode": None, "stdout": "", "stderr": "", "value": None, "valueRepr": None,
         "error": {"type": "Cancelled", "message": "run was cancelled", "traceback": ""}, "files": [], "durationMs": 3}
    )
    with pytest.raises(RunCancelledError, match="cancelled"):
        result.raise_for_status()


def test_runs_from_many_threads_overlap_and_each_gets_its_own_result(sandbox: Sandbox) -> None:
    codes = [f"import time\ntime.sleep(0.2)\n{i} * 10" for i in range(6)]
    with ThreadPoolExecutor(6) as pool:
        values = [r.value for r in pool.map(lambda c: sandbox.run(c, argv=[c[:5]]), codes)]
    assert values == [i * 10 for i in range(6)]


def test_async_sandbox_runs_tasks_concurrently_with_async_callbacks() -> None:
    async def main() -> None:
        seen: list[str] = []

        async def on_stdout(chunk: str) -> None:
            await asyncio.sleep(0)
            seen.append(chunk)

        async with AsyncSandbox(pool_size=2) as sb:
            assert sb.host_pid is not None
            results = await asyncio.gather(
                *(sb.run(f"print('task {i}')\n{i}", on_stdout=on_stdout) for i in range(5)),
                sb.run_fs("m.py", {"m.py": "import sys; print(sys.argv[1:])"}, argv=["x"]),
            )
            with pytest.raises(InvalidPathError):
                await sb.run("1", files={"/etc/passwd": "x"})
        assert [r.value for r in results[:5]] == list(range(5))
        assert results[5].stdout == "['x']\n"
        assert sorted(seen) == [f"task {i}\n" for i in range(5)]
        assert sb.closed and sb.host_pid is None
        with pytest.raises(SandboxClosedError):
            await sb.run("1")

    asyncio.run(main())


def test_the_host_is_restarted_after_it_is_killed() -> None:
    with Sandbox(pool_size=1) as sb:
        assert sb.run("1").value == 1
        first = sb.host_pid
        assert first is not None
        # A run in flight when the host dies fails with a host error, not a guest outcome.
        started = threading.Event()
        errors: list[BaseException] = []

        def doomed() -> None:
            try:
                sb.run("print(1, flush=True)\nimport time\ntime.sleep(60)", on_stdout=lambda _: started.set())
            except BaseException as error:  # noqa: BLE001
                errors.append(error)

        worker = threading.Thread(target=doomed)
        worker.start()
        assert started.wait(60)
        os.kill(first, signal.SIGKILL)
        worker.join(30)
        assert len(errors) == 1 and isinstance(errors[0], HostExitedError), errors
        assert errors[0].code == "INTERNAL_ERROR"
        wait_until(lambda: sb.host_pid is None, 10, "the client to notice the host died")
        assert sb.run("2").value == 2
        assert sb.host_pid not in (None, first)
        # Killed while idle, then used at once: the next run still succeeds.
        sb.kill_host()
        assert sb.run("3").value == 3


@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_forked_child_gets_its_own_host_and_leaves_the_parents_alone(sandbox: Sandbox) -> None:
    assert sandbox.run("1").ok
    parent_host = sandbox.host_pid
    pid = os.fork()
    if pid == 0:  # child: exit status tells the parent what happened
        code = 1
        try:
            result = sandbox.run("6 * 7")
            code = 0 if result.value == 42 and sandbox.host_pid not in (None, parent_host) else 2
            sandbox.close()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert sandbox.host_pid == parent_host and sandbox.run("'parent'").value == "parent"


def _script(body: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(body)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _pids_line(proc: subprocess.Popen[str]) -> list[int]:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("pids "), line + (proc.stderr.read() if proc.stderr else "")
    return [int(p) for p in line.split()[1:]]


EXECUTOR_PIDS = """
def executor_pids(host):
    import os
    out, frontier = [], [host]
    while frontier:
        parent = frontier.pop()
        for name in os.listdir('/proc'):
            if name.isdigit():
                try:
                    stat = open(f'/proc/{name}/stat').read().rsplit(')', 1)[1].split()
                except OSError:
                    continue
                if int(stat[1]) == parent:
                    out.append(int(name)); frontier.append(int(name))
    return out
"""


@pytest.mark.parametrize(
    "ending",
    ["run_code then interpreter exit", "with Sandbox() then exit", "Python killed mid-run"],
)
def test_no_process_outlives_the_python_process(ending: str) -> None:
    if ending == "run_code then interpreter exit":
        body = EXECUTOR_PIDS + """
from wasmbox import run_code, _sandbox
assert run_code('1').ok
host = _sandbox._default.host_pid
print('pids', host, *executor_pids(host), flush=True)
"""
    elif ending == "with Sandbox() then exit":
        body = EXECUTOR_PIDS + """
from wasmbox import Sandbox
with Sandbox(pool_size=2) as sb:
    assert sb.run('1').ok
    host = sb.host_pid
    print('pids', host, *executor_pids(host), flush=True)
assert sb.host_pid is None
"""
    else:
        body = EXECUTOR_PIDS + """
import threading, time
from wasmbox import Sandbox
sb = Sandbox(pool_size=1)
started = threading.Event()
threading.Thread(target=lambda: sb.run('print(1, flush=True)\\nimport time\\ntime.sleep(60)', timeout_ms=2000,
                 on_stdout=lambda _: started.set()), daemon=True).start()
started.wait(60)
print('pids', sb.host_pid, *executor_pids(sb.host_pid), flush=True)
time.sleep(60)
"""
    proc = _script(body)
    pids = _pids_line(proc)
    assert len(pids) >= 2, f"host and at least one executor: {pids}"
    if ending == "Python killed mid-run":
        proc.kill()
    proc.wait(60)
    stderr = proc.stderr.read() if proc.stderr else ""
    for pipe in (proc.stdout, proc.stderr):
        if pipe is not None:
            pipe.close()
    # Killed outright, the host exits once the run in flight reaches its 2 s limit.
    wait_until(lambda: not any(alive(pid) for pid in pids), 30, f"{pids} to exit ({ending})")
    if ending != "Python killed mid-run":
        assert proc.returncode == 0, stderr


def test_closing_a_sandbox_stops_its_host_and_executors_and_refuses_further_runs() -> None:
    sb = Sandbox(pool_size=2)
    assert sb.host_pid is None, "the constructor starts nothing"
    sb.start()
    assert sb.run("1").ok
    host = sb.host_pid
    assert host is not None
    # A run still going when close() gives up waiting is ended with the host.
    started = threading.Event()
    errors: list[BaseException] = []

    def long_run() -> None:
        try:
            sb.run("print(1, flush=True)\nimport time\ntime.sleep(60)", on_stdout=lambda _: started.set())
        except BaseException as error:  # noqa: BLE001
            errors.append(error)

    worker = threading.Thread(target=long_run)
    worker.start()
    assert started.wait(60)
    family = [host, *children_of(host)]
    began = time.monotonic()
    sb.close(timeout_ms=500)
    assert time.monotonic() - began < 10
    sb.close()  # idempotent
    worker.join(10)
    assert len(errors) == 1 and isinstance(errors[0], SandboxClosedError), errors
    wait_until(lambda: not any(alive(pid) for pid in family), 20, "host and executors to exit")
    with pytest.raises(SandboxClosedError) as caught:
        sb.run("1")
    assert caught.value.code == "SANDBOX_CLOSED"


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (dict(code=123), InvalidRequestError, "code must be a str"),
        (dict(code="1", files={"a.txt": 5}), InvalidRequestError, "files['a.txt'] must be str or bytes"),
        (dict(code="1", files=["a.txt"]), InvalidRequestError, "files must be a mapping"),
        (dict(code="1", stdin=5), InvalidRequestError, "stdin must be str or bytes"),
        (dict(code="1", argv="a b"), InvalidRequestError, "argv must be a list of str"),
        (dict(code="1", env={"A": 1}), InvalidRequestError, "env must be a mapping of str -> str"),
        (dict(code="1", timeout_ms=1.5), InvalidRequestError, "timeout_ms must be an int number of milliseconds"),
        (dict(code="1", memory_limit_bytes=True), InvalidRequestError, "memory_limit_bytes must be an int number of bytes"),
        (dict(code="1", on_stdout="print"), TypeError, "on_stdout must be callable"),
        (dict(), InvalidRequestError, "give code"),
        # Checked by the host, with its own words and codes:
        (dict(code="1", timeout_ms=-5), InvalidRequestError, "timeoutMs must be between 1 and"),
        (dict(code="1", memory_limit_bytes=1024), InvalidRequestError, "memoryLimitBytes must be between"),
        (dict(code="1", files={"/abs.txt": "x"}), InvalidPathError, "is absolute"),
        (dict(code="1", language="cobol"), UnsupportedLanguageError, 'language "cobol" is not supported'),
        (dict(entry_path="missing.py", files={"main.py": "1"}), InvalidRequestError, 'entryPath "missing.py" is not among files'),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_bad_arguments_raise_clear_errors(sandbox: Sandbox, kwargs: dict, error: type, message: str) -> None:
    with pytest.raises(error, match=message.replace("(", r"\(").replace("[", r"\[").replace(">", ">")):
        sandbox.run(**kwargs)


def test_a_request_larger_than_the_host_accepts_is_refused_with_its_code() -> None:
    with Sandbox(pool_size=0, max_request_bytes=10_000) as sb:
        with pytest.raises(wasmbox.RequestTooLargeError) as caught:
            sb.run("x = 1", files={"big.txt": "a" * 20_000})
        assert caught.value.code == "REQUEST_TOO_LARGE"
        assert sb.run("'fine'").value == "fine"


def test_inputs_past_their_caps_are_refused_naming_the_cap_and_large_files_go_both_ways(sandbox: Sandbox) -> None:
    with pytest.raises(wasmbox.RequestTooLargeError, match=r"stdin is 2000 bytes, over maxStdinBytes \(1000 bytes\)"):
        sandbox.run("1", stdin="x" * 2000, max_stdin_bytes=1000)
    with pytest.raises(wasmbox.RequestTooLargeError, match=r"over maxInputFileBytes"):
        sandbox.run("1", files={"a.bin": b"\0" * 3000}, max_input_file_bytes=2048)
    # 20 MiB in and out through the client's own host (its request cap is sized for the input caps).
    data = os.urandom(20 * 1024 * 1024)
    result = sandbox.run(
        "d = open('in.bin', 'rb').read()\nopen('out.bin', 'wb').write(d[::-1])\nlen(d)",
        files={"in.bin": data},
        memory_limit_bytes=512 * 1024 * 1024,
    )
    assert result.ok, result.error
    assert result.value == len(data)
    assert result.files["out.bin"] == data[::-1]


def test_an_output_file_past_its_cap_ends_the_run_as_output_limit_naming_it(sandbox: Sandbox) -> None:
    result = sandbox.run("open('big.bin', 'wb').write(bytes(3000))\nopen('small.txt', 'w').write('kept')", max_output_file_bytes=2000)
    assert result.status == "output_limit"
    assert 'output file "big.bin" is 3000 bytes, over maxOutputFileBytes' in result.error.message
    assert list(result.files) == ["small.txt"]
    with pytest.raises(OutputLimitExceededError):
        result.raise_for_status()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(pool_size=-1), "pool_size"),
        (dict(os_sandbox="maybe"), "os_sandbox"),
        (dict(max_request_bytes=0), "max_request_bytes"),
        (dict(isolation="thread"), "isolation"),
    ],
)
def test_bad_sandbox_options_raise_value_error_at_once(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Sandbox(**kwargs)


@pytest.mark.parametrize("isolation", ["interpreter", "isolate"])
def test_reusing_isolation_serves_many_runs_and_none_sees_another(isolation: str) -> None:
    with Sandbox(isolation=isolation, pool_size=1) as sb:
        results = [sb.run(f"import builtins\nbuiltins.marker = {i}\nleft_{i} = 1\nsorted(k for k in globals() if k.startswith('left'))") for i in range(20)]
        assert [r.value for r in results] == [[f"left_{i}"] for i in range(20)]
        assert sb.run("import builtins\nhasattr(builtins, 'marker')").value is False


def test_a_host_that_cannot_start_raises_a_typed_error(tmp_path: Path) -> None:
    with pytest.raises(DenoNotFoundError) as missing:
        Sandbox(deno=tmp_path / "no-such-deno").run("1")
    assert missing.value.code == "DENO_NOT_FOUND"
    broken = tmp_path / "broken-deno"
    broken.write_text("#!/bin/sh\necho 'not deno' >&2\nexit 3\n")
    broken.chmod(0o755)
    with Sandbox(deno=broken) as sb, pytest.raises(ExecutorStartFailedError) as failed:
        sb.run("1")
    assert failed.value.code == "EXECUTOR_START_FAILED" and "not deno" in failed.value.message


def test_a_host_that_breaks_the_protocol_raises_protocol_error_and_is_stopped(tmp_path: Path) -> None:
    fake = tmp_path / "chatty-deno"
    fake.write_text("#!/bin/sh\necho 'hello from a host that is not wasmbox'\nexec sleep 60\n")
    fake.chmod(0o755)
    sb = Sandbox(deno=fake)
    try:
        with pytest.raises(wasmbox.ProtocolError) as caught:
            sb.run("1")
        assert caught.value.code == "INTERNAL_ERROR" and "not JSON" in caught.value.message
        wait_until(lambda: not pids_with(str(fake)), 10, "the fake host's process group to be killed")
    finally:
        sb.close()


def test_python_m_wasmbox_behaves_like_the_npm_cli(tmp_path: Path) -> None:
    script = tmp_path / "prog.py"
    script.write_text("import sys\nprint(sys.stdin.read().upper(), sys.argv[1:])\nopen('o.txt', 'w').write('x')\nsys.exit(4)\n")
    done = subprocess.run(
        [sys.executable, "-m", "wasmbox", "run", "--timeout", "20s", "--out", str(tmp_path / "out"), str(script), "a1"],
        input="hi", capture_output=True, text=True, timeout=120,
    )
    assert (done.returncode, done.stdout) == (4, "HI ['a1']\n"), done.stderr
    assert (tmp_path / "out" / "o.txt").read_text() == "x"
    usage = subprocess.run([sys.executable, "-m", "wasmbox", "run", "--bogus"], capture_output=True, text=True, timeout=60)
    assert usage.returncode == 2 and "unknown option --bogus" in usage.stderr
    version = subprocess.run([sys.executable, "-m", "wasmbox", "--version"], capture_output=True, text=True, timeout=60)
    assert version.stdout == f"wasmbox {wasmbox.__version__}\n"


def test_wasmbox_errors_keep_their_code_in_str_and_wire_form() -> None:
    error = InvalidPathError("bad")
    assert isinstance(error, ValueError) and isinstance(error, WasmboxError)
    assert str(error) == "bad [INVALID_PATH]"
    assert error.to_wire() == {"code": "INVALID_PATH", "name": "InvalidPathError", "message": "bad"}


def test_the_value_comes_back_as_the_exact_python_value(sandbox: Sandbox) -> None:
    import datetime
    import decimal
    import fractions
    import math

    result = sandbox.run(
        "import datetime, decimal, fractions\n"
        "(2.0, 2**70, {1: 'a', (2, 3): {4}}, float('nan'), b'\\x00', frozenset({1}), [1.5, None],"
        " datetime.date(2024, 1, 2), decimal.Decimal('1.10'), fractions.Fraction(1, 3), 1j)"
    )
    assert result.ok, result.stderr
    value = result.value
    assert type(value) is tuple and len(value) == 11
    assert type(value[0]) is float and value[0] == 2.0
    assert value[1] == 2**70
    assert value[2] == {1: "a", (2, 3): {4}}
    assert math.isnan(value[3])
    assert value[4:] == (b"\x00", frozenset({1}), [1.5, None], datetime.date(2024, 1, 2), decimal.Decimal("1.10"), fractions.Fraction(1, 3), 1j)
    assert str(value[8]) == "1.10"
    assert result.value_json is None  # nan has no JSON form
    assert sandbox.run("(1, {'a': 2.5})").value_json == [1, {"a": 2.5}]


def test_a_value_with_an_object_in_it_keeps_its_repr_and_no_value(sandbox: Sandbox) -> None:
    result = sandbox.run("class P:\n    def __repr__(self):\n        return 'P()'\n[P()]")
    assert (result.value, result.value_repr) == (None, "[P()]")
