"""Sessions through the Python client, against the real host (Deno, real executors, real Pyodide)."""

from __future__ import annotations

import asyncio
import gc
import time

import pytest

from conftest import alive, executors_of, wait_until
from wasmbox import (
    AsyncSandbox,
    AsyncSession,
    InvalidPathError,
    InvalidRequestError,
    Sandbox,
    Session,
    SessionClosedError,
    SessionDeadError,
    WasmboxError,
)


def test_cpu_time_ms_applies_to_each_session_call_on_its_own(sandbox: Sandbox) -> None:
    with sandbox.session() as session:
        for _ in range(2):
            assert session.run("n = 0\nfor i in range(1_000_000): n += 1", cpu_time_ms=1_500).ok
        timed = session.run("try:\n    while True: pass\nexcept KeyboardInterrupt:\n    print('caught')", cpu_time_ms=300, timeout_ms=30_000)
        assert (timed.status, timed.stdout, timed.error and timed.error.type) == ("timeout", "caught\n", "CpuTimeLimit")
        assert session.run("n").value == 1_000_000


def test_a_session_keeps_globals_imports_and_files_between_runs(sandbox: Sandbox) -> None:
    with sandbox.session() as session:
        assert isinstance(session, Session) and isinstance(session.id, str)
        first = session.run("import json\ncounter = 1\nopen('state.txt', 'w').write('kept')")
        assert first.ok and first.files == {"state.txt": b"kept"}
        second = session.run("counter += 1\njson.dumps({'c': counter, 'f': open('state.txt').read()})")
        assert second.value == '{"c": 2, "f": "kept"}'
        assert second.files == {}, "only files the run created or changed come back"
        # A timeout whose KeyboardInterrupt the guest caught leaves the interpreter, and the session, alive.
        timed = session.run("try:\n    while True: pass\nexcept KeyboardInterrupt:\n    print('caught')", timeout_ms=300)
        assert (timed.status, timed.stdout) == ("timeout", "caught\n")
        chunks: list[str] = []
        streamed = session.run_fs("more.py", {"more.py": "print(counter, flush=True)"}, on_stdout=chunks.append)
        assert streamed.stdout == "".join(chunks) == "2\n"
    assert session.closed


def test_session_files_are_read_and_written_between_runs_without_running_code(sandbox: Sandbox) -> None:
    with sandbox.session() as session:
        session.files.write("data/in.csv", "a,b\n1,2\n")
        session.files.write("blob.bin", b"\x00\xff")
        result = session.run("import csv\nrows = list(csv.reader(open('data/in.csv')))\nopen('out.txt', 'w').write(str(len(rows)))\nopen('blob.bin', 'rb').read()[1]")
        assert result.value == 255
        assert session.files.read_text("out.txt") == "2"
        assert session.files.read("blob.bin") == b"\x00\xff"
        assert sorted((f.path, f.size) for f in session.files.list()) == [("blob.bin", 2), ("data/in.csv", 8), ("out.txt", 1)]
        with pytest.raises(InvalidPathError):
            session.files.read("../../etc/passwd")
        with pytest.raises(InvalidPathError):
            session.files.read("missing.txt")


def test_async_session_files_work_the_same() -> None:
    async def main() -> tuple[str, list[str]]:
        async with AsyncSandbox(pool_size=1) as sb:
            async with sb.session() as session:
                await session.files.write("note.txt", "hello")
                await session.run("open('note.txt', 'a').write(' world')")
                return await session.files.read_text("note.txt"), [f.path for f in await session.files.list()]

    assert asyncio.run(main()) == ("hello world", ["note.txt"])


def test_two_sessions_never_see_each_others_state(sandbox: Sandbox) -> None:
    with sandbox.session() as a, sandbox.session() as b:
        assert a.id != b.id
        assert a.run("secret = 'a-only'\nopen('a.txt', 'w').write('a')").ok
        seen = b.run("import os\n('secret' in globals(), os.path.exists('a.txt'))")
        assert seen.value == (False, False)  # the exact value: the tuple the code made
        # Nor does a plain run see a session's state.
        assert sandbox.run("'secret' in globals()").value is False
        assert a.run("secret").value == "a-only"


def test_a_session_whose_run_had_to_be_killed_is_dead_and_says_so(sandbox: Sandbox) -> None:
    session = sandbox.session()
    assert session.run("x = 1").ok
    # The guest swallows the timeout's KeyboardInterrupt, so the host kills the executor.
    killed = session.run("while True:\n    try:\n        while True: pass\n    except BaseException: pass", timeout_ms=300)
    assert killed.status == "timeout"
    with pytest.raises(SessionDeadError) as caught:
        session.run("x")
    assert caught.value.code == "SESSION_DEAD" and isinstance(caught.value, WasmboxError)
    assert session.id in caught.value.message
    session.close()  # a dead session closes quietly
    session.close()
    with pytest.raises(SessionClosedError):
        session.run("x")
    assert sandbox.run("'the sandbox goes on'").value == "the sandbox goes on"


def test_a_closed_session_raises_session_closed_error(sandbox: Sandbox) -> None:
    session = sandbox.session()
    assert session.run("1").ok
    session.close()
    session.close()  # idempotent
    with pytest.raises(SessionClosedError) as caught:
        session.run("1")
    assert caught.value.code == "SESSION_CLOSED"
    # Closed by the host when idle: the host's own SESSION_CLOSED answer becomes the same error.
    idle = sandbox.session(idle_timeout_ms=200)
    assert idle.run("1").ok
    time.sleep(1.0)
    with pytest.raises(SessionClosedError, match="idle"):
        idle.run("1")
    idle.close()


def test_session_options_are_checked(sandbox: Sandbox) -> None:
    with pytest.raises(InvalidRequestError, match="idle_timeout_ms must be an int"):
        sandbox.session(idle_timeout_ms=1.5)  # type: ignore[arg-type]
    with pytest.raises(InvalidRequestError, match="maxLifetimeMs must be a positive integer"):
        sandbox.session(max_lifetime_ms=0)


def test_sessions_end_with_their_host_and_with_their_sandbox() -> None:
    with Sandbox(pool_size=0) as sb:
        session = sb.session()
        assert session.run("x = 1").ok
        executors = executors_of(sb.host_pid)
        assert executors, "the session has an executor of its own"
        sb.kill_host()
        with pytest.raises(SessionDeadError, match="host process"):
            session.run("x")
        assert sb.run("'new host'").value == "new host"
        session.close()
        kept = sb.session()
        assert kept.run("y = 2").ok
        # A session that is dropped unclosed is closed on the host, and its executor stops.
        dropped = sb.session()
        assert dropped.run("z = 3").ok
        host = sb.host_pid
        before = set(executors_of(host))
        del dropped
        gc.collect()
        wait_until(lambda: len([p for p in before if alive(p)]) < len(before), 30, "the dropped session's executor to stop")
        assert kept.run("y").value == 2
    with pytest.raises(SessionClosedError, match="sandbox"):
        kept.run("y")
    kept.close()


def test_async_sessions_keep_state_and_close_on_the_way_out() -> None:
    async def main() -> None:
        async with AsyncSandbox(pool_size=1) as sb:
            async with sb.session() as session:
                assert isinstance(session, AsyncSession)
                await session.run("import math\nr = 2")
                assert (await session.run("math.pi * r * r")).value == pytest.approx(12.566, rel=1e-3)
            assert session.closed
            with pytest.raises(SessionClosedError):
                await session.run("r")
            other = await sb.session()
            try:
                results = await asyncio.gather(*(other.run(f"n = {i}\nn * 10") for i in range(3)))
                assert [r.value for r in results] == [0, 10, 20], "runs of a session queue in order"
            finally:
                await other.close()

    asyncio.run(main())


def test_an_open_abandoned_by_its_task_does_not_leave_the_session_behind() -> None:
    async def main() -> None:
        async with AsyncSandbox(pool_size=0) as sb:
            # pool_size=0: every executor of this host is a session's, made on demand.
            opening = asyncio.ensure_future(sb.session())
            await asyncio.sleep(0.3)  # the request is on its way; the executor is starting
            opening.cancel()
            try:
                session = await opening
            except asyncio.CancelledError:
                pass
            else:  # the open won the race; then it is ours to close
                await session.close()
            host = sb.host_pid
            await asyncio.get_running_loop().run_in_executor(
                None, wait_until, lambda: not executors_of(host), 60, "the abandoned session's executor to stop"
            )
            assert (await sb.run("'usable'")).value == "usable"

    asyncio.run(main())
