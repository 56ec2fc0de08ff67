"""Host functions (``tools``): the guest calls back into the caller's Python, through the real host."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from wasmbox import AsyncSandbox, InvalidRequestError, Sandbox, run_code

NESTED = """\
from wasmbox import tools
total = 0
for i in range(10):
    for j in range(3):
        total = tools.add(a=total, b=tools.add(a=i, b=j))
[total, tools.search(q='x')]
"""


def test_host_functions_are_called_with_keyword_arguments_also_nested_in_loops(sandbox: Sandbox) -> None:
    threads: set[int] = set()

    def add(a: int, b: int) -> int:
        threads.add(threading.get_ident())
        return a + b

    def search(q: str) -> dict[str, Any]:
        return {"hits": [f"{q}-1", f"{q}-2"], "nested": {"ok": True, "none": None, "float": 1.5}}

    result = sandbox.run(NESTED, tools={"add": add, "search": search})
    assert result.ok, result.stderr
    assert result.value == [165, {"hits": ["x-1", "x-2"], "nested": {"ok": True, "none": None, "float": 1.5}}]
    assert threading.get_ident() not in threads, "host functions run on worker threads, not the caller's"
    # The one-call API takes them too.
    assert run_code("from wasmbox import tools\ntools.echo(v=[1, 'two'])", tools={"echo": lambda v: v}).value == [1, "two"]


def test_coroutine_and_plain_host_functions_serve_concurrent_async_runs() -> None:
    async def main() -> None:
        loop_thread = threading.get_ident()
        seen: dict[str, set[int]] = {"async": set(), "sync": set()}

        async def add(a: int, b: int) -> int:
            seen["async"].add(threading.get_ident())
            await asyncio.sleep(0)
            return a + b

        def search(q: str) -> dict[str, Any]:
            seen["sync"].add(threading.get_ident())
            time.sleep(0.01)  # blocking is fine: plain functions run off the loop
            return {"hits": [f"{q}-1", f"{q}-2"]}

        async with AsyncSandbox(pool_size=2) as sb:
            results = await asyncio.gather(
                sb.run(NESTED.replace("q='x'", "q='a'"), tools={"add": add, "search": search}),
                sb.run(NESTED.replace("q='x'", "q='b'"), tools={"add": add, "search": search}),
            )
            assert [r.value for r in results] == [[165, {"hits": ["a-1", "a-2"]}], [165, {"hits": ["b-1", "b-2"]}]], [r.stderr for r in results]
            async with sb.session(tools={"add": add}) as session:
                await session.run("from wasmbox import tools\nx = tools.add(a=1, b=2)")
                both = await session.run("tools.add(a=x, b=tools.search(q='s')['hits'][0] == 's-1')", tools={"search": search})
                assert both.value == 4, both.stderr
        assert seen["async"] == {loop_thread}
        assert seen["sync"] and loop_thread not in seen["sync"]

    asyncio.run(main())


def test_errors_cross_both_ways(sandbox: Sandbox) -> None:
    calls: list[Any] = []

    def fail() -> None:
        raise PermissionError("the host says no")

    def record(**kwargs: Any) -> None:
        calls.append(kwargs)

    tools = {
        "fail": fail,
        "record": record,
        "a_set": lambda: {1, 2},
        "nan": lambda: float("nan"),
        "two_args": lambda a, b: a + b,
    }
    caught = sandbox.run(
        "from wasmbox import tools, ToolError\n"
        "out = []\n"
        "for call in (lambda: tools.fail(), lambda: tools.a_set(), lambda: tools.nan(), lambda: tools.two_args(a=1)):\n"
        "    try:\n"
        "        call()\n"
        "    except ToolError as e:\n"
        "        out.append(str(e))\n"
        "try:\n"
        "    tools.record(x={1, 2})\n"
        "except TypeError:\n"
        "    out.append('guest TypeError')\n"
        "tools.record(x=[1, 'two', None, {'k': 1.5}])\n"
        "out",
        tools=tools,
    )
    assert caught.ok, caught.stderr
    fail_message, set_message, nan_message, args_message, guest_type_error = caught.value
    assert fail_message == "the host says no"
    assert "a_set returned a value that is not JSON-serialisable" in set_message
    assert "nan returned a value that is not JSON-serialisable" in nan_message
    assert "missing 1 required positional argument: 'b'" in args_message
    assert guest_type_error == "guest TypeError"
    assert calls == [{"x": [1, "two", None, {"k": 1.5}]}]
    # Not caught by the guest: the run ends with status "error" and a traceback.
    uncaught = sandbox.run("from wasmbox import tools\n\ntools.fail()", tools=tools)
    assert (uncaught.status, uncaught.error and uncaught.error.type) == ("error", "ToolError")
    assert 'line 3' in uncaught.error.traceback and "the host says no" in uncaught.error.message


def test_unknown_and_bad_names_are_refused(sandbox: Sandbox) -> None:
    # Names not given to the run do not exist in the guest, inherited JavaScript names included.
    result = sandbox.run(
        "from wasmbox import tools\nout = []\nfor name in ['nope', 'constructor', 'toString', '__proto__']:\n"
        "    try:\n        getattr(tools, name)()\n    except AttributeError:\n        out.append(name)\nout",
        tools={"add": lambda a, b: a + b},
    )
    assert result.value == ["nope", "constructor", "toString", "__proto__"]
    # Nor are a session's tools seen by other runs.
    with sandbox.session(tools={"add": lambda a, b: a + b}) as session:
        assert session.run("from wasmbox import tools\ntools.add(a=2, b=3)").value == 5
        assert sandbox.run("from wasmbox import tools\ntools.add(a=2, b=3)").error.type == "AttributeError"  # type: ignore[union-attr]
    for bad in ("bad-name", "__init__", ""):
        with pytest.raises(InvalidRequestError, match="must be a Python identifier"):
            sandbox.run("1", tools={bad: lambda: 1})
    with pytest.raises(TypeError, match="must be callable"):
        sandbox.run("1", tools={"x": 5})  # type: ignore[dict-item]

    async def coroutine() -> int:
        return 1

    with pytest.raises(TypeError, match="coroutine function: use AsyncSandbox"):
        sandbox.run("1", tools={"x": coroutine})
    with pytest.raises(TypeError, match="mapping"):
        sandbox.run("1", tools=[print])  # type: ignore[arg-type]


def test_a_host_function_that_never_answers_ends_as_timeout_and_the_sandbox_goes_on(sandbox: Sandbox) -> None:
    release = threading.Event()
    entered = threading.Event()

    def hang() -> str:
        entered.set()
        release.wait(60)
        return "too late"

    began = time.monotonic()
    result = sandbox.run("from wasmbox import tools\ntools.hang()", timeout_ms=500, tools={"hang": hang})
    assert entered.is_set()
    assert result.status == "timeout"
    assert time.monotonic() - began < 30, "the caller is not held up by the host function"
    release.set()  # its late answer is refused by the host and dropped by the client
    time.sleep(0.3)
    assert sandbox.run("from wasmbox import tools\ntools.f()", tools={"f": lambda: "fine"}).value == "fine"


def test_a_result_larger_than_the_host_accepts_becomes_a_tool_error() -> None:
    with Sandbox(pool_size=0, max_request_bytes=10_000) as sb:
        result = sb.run(
            "from wasmbox import tools, ToolError\ntry:\n    tools.big()\nexcept ToolError as e:\n    print(e)\nlen(tools.small())",
            tools={"big": lambda: "a" * 20_000, "small": lambda: "a" * 5_000},
        )
        assert result.ok, result.stderr
        assert "more than the host accepts (10000)" in result.stdout and result.value == 5000
