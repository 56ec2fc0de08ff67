"""Issue 14 from the Python client: asyncio, top-level await, thread pools and system queries work in
runs and in sessions, and what a program cannot do fails with a Python exception, never a crash."""

from __future__ import annotations

from wasmbox import Sandbox

ASYNC_PROGRAM = """
import asyncio

async def fetch(i):
    await asyncio.sleep(0.01)
    return i * 10

async def main():
    async with asyncio.timeout(5):
        return await asyncio.gather(*(fetch(i) for i in range(3)))

asyncio.run(main())
"""


def test_asyncio_run_and_top_level_await_give_their_values(sandbox: Sandbox) -> None:
    result = sandbox.run(ASYNC_PROGRAM + "\nresults = asyncio.run(main())\nresults")
    assert result.ok, result.stderr
    assert result.value == [0, 10, 20]
    awaited = sandbox.run("import asyncio\nasync def f():\n    await asyncio.sleep(0)\n    return (1, 2.0)\nawait f()")
    assert awaited.ok, awaited.stderr
    assert awaited.value == (1, 2.0) and type(awaited.value[1]) is float


def test_a_session_keeps_its_event_loop_so_a_task_started_in_one_cell_finishes_in_the_next(sandbox: Sandbox) -> None:
    with sandbox.session() as session:
        first = session.run("import asyncio\nasync def slow():\n    await asyncio.sleep(0.05)\n    return 'done'\ntask = asyncio.get_event_loop().create_task(slow())\nawait asyncio.sleep(0)\ntask.done()")
        assert first.ok, first.stderr
        assert first.value is False
        second = session.run("await task")
        assert second.ok, second.stderr
        assert second.value == "done"


def test_thread_pool_fan_out_works_and_starting_a_thread_says_what_to_do(sandbox: Sandbox) -> None:
    result = sandbox.run(
        "from concurrent.futures import ThreadPoolExecutor\n"
        "with ThreadPoolExecutor(8) as pool:\n"
        "    squares = list(pool.map(lambda n: n * n, range(6)))\n"
        "squares"
    )
    assert result.value == [0, 1, 4, 9, 16, 25]
    refused = sandbox.run("import threading\nthreading.Thread(target=print).start()")
    assert refused.status == "error"
    assert refused.error is not None and refused.error.type == "RuntimeError"
    assert "ThreadPoolExecutor" in refused.error.message


def test_system_queries_answer_and_a_session_survives_them(sandbox: Sandbox) -> None:
    with sandbox.session() as session:
        user = session.run("import os, getpass, socket\n(os.getuid(), getpass.getuser(), socket.gethostname(), os.cpu_count())")
        assert user.ok, user.stderr
        assert user.value == (0, "root", "sandbox", 1)
        assert session.run("1 + 1").value == 2
