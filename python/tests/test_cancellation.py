"""A caller who stops waiting stops the run: asyncio cancellation, KeyboardInterrupt, a host told to stop.

Each test uses a host with ``pool_size=0``, so that its only executors are the ones its runs and
sessions use: the run really stopped when its executor is gone.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time

import pytest

from conftest import alive, executors_of, wait_until
from wasmbox import AsyncSandbox, RunCancelledError, RunResult, Sandbox, SessionDeadError

SPIN = "print('the cancelled run', flush=True)\nwhile True: pass"


def test_cancelling_an_asyncio_task_cancels_its_run_and_the_sandbox_goes_on_at_once() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        async with AsyncSandbox(pool_size=0) as sb:
            started = asyncio.Event()
            task = asyncio.create_task(sb.run(SPIN, timeout_ms=120_000, on_stdout=lambda _: started.set()))
            await asyncio.wait_for(started.wait(), 60)
            executors = executors_of(sb.host_pid)
            assert executors
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            # Usable right away, and the next caller gets its own result, not the cancelled one's.
            after = await sb.run("print('next')\n'next'")
            assert (after.status, after.value, after.stdout) == ("ok", "next", "next\n")
            await loop.run_in_executor(None, wait_until, lambda: not any(alive(p) for p in executors), 30, "the cancelled run's executor to stop")
            assert sb._core._conn is not None and sb._core._conn._pending == {}, "no reply is waited for any more"

            # asyncio.wait_for cancels the same way (the run may not have started yet: then the
            # host answers "cancelled before it started" and keeps the executor it was starting).
            began = time.monotonic()
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(sb.run("while True: pass", timeout_ms=120_000), 1.0)
            assert time.monotonic() - began < 30
            assert (await sb.run("'after wait_for'")).value == "after wait_for"

            # A cancelled session run ends the session's interpreter: the session is dead.
            session = await sb.session()
            await session.run("x = 1")
            started.clear()
            task = asyncio.create_task(session.run(SPIN, timeout_ms=120_000, on_stdout=lambda _: started.set()))
            await asyncio.wait_for(started.wait(), 60)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            with pytest.raises(SessionDeadError):
                await session.run("x")
            await session.close()
            assert (await sb.run("6 * 7")).value == 42

    asyncio.run(main())


def test_keyboard_interrupt_during_a_run_cancels_it_on_the_host() -> None:
    with Sandbox(pool_size=0) as sb:
        started = threading.Event()
        executors: list[int] = []

        def interrupt_once_running() -> None:
            if started.wait(60):
                executors.extend(executors_of(sb.host_pid))
                os.kill(os.getpid(), signal.SIGINT)  # KeyboardInterrupt in the main thread, as Ctrl-C

        threading.Thread(target=interrupt_once_running, daemon=True).start()
        with pytest.raises(KeyboardInterrupt):
            sb.run(SPIN, timeout_ms=120_000, on_stdout=lambda _: started.set())
        assert executors
        after = sb.run("'next'")
        assert (after.value, after.stdout) == ("next", "")
        wait_until(lambda: not any(alive(p) for p in executors), 30, "the interrupted run's executor to stop")


def test_an_exception_from_a_callback_cancels_the_run() -> None:
    with Sandbox(pool_size=0) as sb:
        executors: list[int] = []

        def on_stdout(_: str) -> None:
            executors.extend(executors_of(sb.host_pid))
            raise RuntimeError("the caller's own bug")

        with pytest.raises(RuntimeError, match="own bug"):
            sb.run(SPIN, timeout_ms=120_000, on_stdout=on_stdout)
        assert executors
        wait_until(lambda: not any(alive(p) for p in executors), 30, "the run's executor to stop")


def test_a_host_stopped_by_sigterm_answers_runs_in_flight_with_status_cancelled() -> None:
    with Sandbox(pool_size=0) as sb:
        started = threading.Event()
        outcome: list[RunResult] = []
        worker = threading.Thread(target=lambda: outcome.append(sb.run(SPIN, timeout_ms=120_000, on_stdout=lambda _: started.set())))
        worker.start()
        assert started.wait(60)
        host = sb.host_pid
        assert host is not None
        os.kill(host, signal.SIGTERM)
        worker.join(60)
        (result,) = outcome
        assert result.status == "cancelled" and result.error is not None and result.error.type == "Cancelled"
        assert result.stdout == "the cancelled run\n"
        with pytest.raises(RunCancelledError):
            result.raise_for_status()
        # Whether that host then exits is the next test's; this one goes on on a new host.
        sb.kill_host()
        assert sb.run("'a new host'").value == "a new host" and sb.host_pid != host


def test_a_host_stopped_by_sigterm_exits() -> None:
    with Sandbox(pool_size=0) as sb:
        assert sb.run("1").ok
        host = sb.host_pid
        assert host is not None
        os.kill(host, signal.SIGTERM)
        try:
            wait_until(lambda: sb.host_pid is None, 10, "the host to exit after SIGTERM")
        finally:
            sb.kill_host()
