"""Saving, restoring and forking sessions (issue 19).

Three layers: the wire forms alone (no host); the client against a stand-in host (fake_host.py,
no Deno), which checks what the client sends and how it builds the sessions it gets back; and the
real host (Deno, real executors, real Pyodide), which checks that state really carries over.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

import wasmbox
from wasmbox import (
    AsyncSandbox,
    AsyncSession,
    InvalidRequestError,
    InvalidSessionBlobError,
    RequestTooLargeError,
    Sandbox,
    Session,
    SessionBlobIncompatibleError,
    SessionNotSaveableError,
    WasmboxError,
)
from wasmbox._errors import ProtocolError, error_from_wire
from wasmbox._runtime import HostRuntime
from wasmbox._sandbox import _HOST_MAX_LINE_BYTES, _check_options
from wasmbox._wire import (
    decode_session_forked,
    decode_session_saved,
    encode_line,
    encode_session_fork,
    encode_session_open,
    encode_session_save,
    line_bytes,
)

HERE = Path(__file__).resolve().parent


def double(x: int) -> int:
    return 2 * x


# -- the wire forms -------------------------------------------------------------------------------


def test_a_restore_is_sent_as_base64_after_the_options() -> None:
    request = encode_session_open(3, tools=["double"], restore=b"\x00\xffblob", idle_timeout_ms=1000)
    assert request == {"id": 3, "op": "session.open", "tools": ["double"], "idleTimeoutMs": 1000, "restore": "AP9ibG9i"}
    assert next(iter(request)) == "id", "id comes first, so the host can name it even in a line too long to read"
    assert encode_session_open(3, restore=bytearray(b"ab"))["restore"] == encode_session_open(3, restore=memoryview(b"ab"))["restore"] == "YWI="
    assert "restore" not in encode_session_open(3)


def test_a_restore_that_is_not_bytes_is_refused_before_sending() -> None:
    with pytest.raises(InvalidRequestError, match="restore must be bytes"):
        encode_session_open(1, restore="AP9ibG9i")


def test_save_and_fork_requests_name_the_session() -> None:
    assert encode_session_save(4, "s1") == {"id": 4, "op": "session.save", "sessionId": "s1"}
    assert encode_session_fork(5, "s1", 3) == {"id": 5, "op": "session.fork", "sessionId": "s1", "count": 3}
    for bad in (1.5, "3", True):
        with pytest.raises(InvalidRequestError, match="fork count must be an int"):
            encode_session_fork(5, "s1", bad)  # type: ignore[arg-type]


def test_the_save_reply_decodes_to_the_blob_bytes() -> None:
    assert decode_session_saved({"id": 1, "encoding": "base64", "blob": "AP9ibG9i", "bytes": 6}) == b"\x00\xffblob"
    assert decode_session_saved({"id": 1, "encoding": "base64", "blob": ""}) == b""
    with pytest.raises(SessionNotSaveableError, match="JavaScript") as caught:
        decode_session_saved({"id": 1, "error": {"code": "SESSION_NOT_SAVEABLE", "message": "it holds a JavaScript object"}})
    assert caught.value.code == "SESSION_NOT_SAVEABLE"
    for broken in (
        {"id": 1, "blob": "AP9ibG9i"},  # no encoding
        {"id": 1, "encoding": "base64"},  # no blob
        {"id": 1, "encoding": "base64", "blob": "not base64!"},
        {"id": 1, "encoding": "base64", "blob": "AP9ibG9i", "bytes": 7},  # a length that does not match
    ):
        with pytest.raises(ProtocolError):
            decode_session_saved(broken)


def test_the_fork_reply_decodes_to_a_list_of_ids() -> None:
    assert decode_session_forked({"id": 1, "sessionIds": ["a"]}) == ["a"]
    assert decode_session_forked({"id": 1, "sessionIds": ["a", "b", "c"]}) == ["a", "b", "c"]
    with pytest.raises(wasmbox.TooManySessionsError):
        decode_session_forked({"id": 1, "error": {"code": "TOO_MANY_SESSIONS", "message": "3 more do not fit"}})
    for broken in ({"id": 1}, {"id": 1, "sessionIds": "a"}, {"id": 1, "sessionIds": []}, {"id": 1, "sessionIds": [1]}):
        with pytest.raises(ProtocolError):
            decode_session_forked(broken)


def test_the_new_codes_map_to_their_classes() -> None:
    cases = {
        "SESSION_NOT_SAVEABLE": SessionNotSaveableError,
        "INVALID_SESSION_BLOB": InvalidSessionBlobError,
        "SESSION_BLOB_INCOMPATIBLE": SessionBlobIncompatibleError,
    }
    for code, cls in cases.items():
        error = error_from_wire({"code": code, "message": "m"})
        assert type(error) is cls and error.code == code and cls.code == code
        assert code in wasmbox.ERROR_CODES and cls.__name__ in wasmbox.__all__
    # A bad or incompatible blob is bad input to the call; not being saveable is about the session.
    assert issubclass(InvalidSessionBlobError, InvalidRequestError) and issubclass(SessionBlobIncompatibleError, InvalidRequestError)
    assert not issubclass(SessionNotSaveableError, InvalidRequestError)
    # NOT_IMPLEMENTED (a JavaScript session's save) has no class of its own: a WasmboxError with the code.
    error = error_from_wire({"code": "NOT_IMPLEMENTED", "message": "javascript sessions cannot be saved (Python only)"})
    assert type(error) is WasmboxError and error.code == "NOT_IMPLEMENTED"


def test_line_bytes_counts_a_restore_without_copying_it() -> None:
    for request in (encode_session_open(12345, tools=["a"], restore=b"x" * 1000), encode_session_open(1), encode_session_save(1, "s")):
        assert line_bytes(request) == len(encode_line(request)) - 1


def test_the_host_takes_request_lines_as_long_as_it_can_hold() -> None:
    def flag(args: list[str]) -> int:
        return int(args[args.index("--max-request-bytes") + 1])

    assert flag(_check_options(None, "auto", None)) == _HOST_MAX_LINE_BYTES == 2**29 - 24
    assert flag(_check_options(None, "auto", 10_000)) == 10_000
    # Past what one JavaScript string holds the host would crash on a long line, not refuse it.
    assert flag(_check_options(None, "auto", 2**31)) == _HOST_MAX_LINE_BYTES


# -- the client against a stand-in host -----------------------------------------------------------


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[tuple[Sandbox, Path]]:
    """A Sandbox whose host is fake_host.py, and the file it logs the requests to."""
    log = tmp_path / "requests.jsonl"
    deno = tmp_path / "deno"
    deno.write_text(f"#!/bin/sh\nexec {sys.executable} {HERE / 'fake_host.py'} \"$@\"\n")
    deno.chmod(0o755)
    sb = Sandbox(pool_size=0, deno=deno, host_env={**os.environ, "FAKE_HOST_LOG": str(log)})
    # Runtime files are not needed by the stand-in: point at empty directories.
    sb._core._runtime = HostRuntime(deno=str(deno), dist_dir=tmp_path, pyodide_dir=tmp_path)
    try:
        yield sb, log
    finally:
        sb.close(timeout_ms=5_000)


def logged(log: Path, op: str) -> list[dict[str, Any]]:
    return [entry for entry in map(json.loads, log.read_text().splitlines()) if entry.get("op") == op]


def test_the_client_saves_restores_and_forks_with_the_ops_of_the_contract(fake: tuple[Sandbox, Path]) -> None:
    sb, log = fake
    session = sb.session(tools={"double": double})
    assert session.run("call double").value == 42
    blob = session.save()
    assert blob == b"BLOB|python"
    assert logged(log, "session.save") == [{"id": logged(log, "session.save")[0]["id"], "op": "session.save", "sessionId": session.id}]

    restored = sb.session(restore=blob, tools={"double": double})
    assert isinstance(restored, Session) and restored.id != session.id
    opened = logged(log, "session.open")[-1]
    assert opened["restore"] == "QkxPQnxweXRob24=" and opened["tools"] == ["double"]
    assert "language" not in opened and "packages" not in opened, "restoring, language and packages come from the blob"
    # Its runs name no language (the host runs them in the saved session's) and reach its host functions.
    assert restored.run("x").value == {"session": restored.id, "language": None}
    assert restored.run("call double").value == 42

    one = session.fork()
    assert isinstance(one, Session) and one.id not in (session.id, restored.id)
    three = session.fork(3)
    assert isinstance(three, list) and len(three) == 3 and all(isinstance(s, Session) for s in three)
    assert len({s.id for s in three} | {one.id, session.id}) == 5
    assert [request.get("count") for request in logged(log, "session.fork")] == [1, 3]
    for fork in (one, *three):
        assert fork.run("x").value == {"session": fork.id, "language": "python"}
        assert fork.run("call double").value == 42, "a fork has its parent's host functions"
        fork.close()
    assert session.run("call double").value == 42, "the parent goes on"
    session.close()
    restored.close()


def test_a_plain_open_still_names_python_and_a_javascript_save_is_not_implemented(fake: tuple[Sandbox, Path]) -> None:
    sb, log = fake
    with sb.session() as plain:
        assert plain.run("x").value["language"] == "python"
    with sb.session(language="javascript") as js:
        with pytest.raises(WasmboxError) as caught:
            js.save()
        assert caught.value.code == "NOT_IMPLEMENTED"
    assert "restore" not in logged(log, "session.open")[0]


def test_a_bad_blob_is_the_hosts_to_refuse_and_a_too_long_one_the_clients(fake: tuple[Sandbox, Path]) -> None:
    sb, log = fake
    with pytest.raises(InvalidSessionBlobError):
        sb.session(restore=b"garbage")
    # Past max_request_bytes the client refuses it before it writes the line.
    small = Sandbox(pool_size=0, max_request_bytes=1_000)
    try:
        with pytest.raises(RequestTooLargeError, match="max_request_bytes=1000"):
            small.session(restore=b"\0" * 1_000)
        assert small.host_pid is None, "no host was started for a request refused before sending"
    finally:
        small.close()


def test_the_async_client_saves_restores_and_forks(fake: tuple[Sandbox, Path]) -> None:
    sb, log = fake
    sync_core = sb._core

    async def main() -> None:
        asb = AsyncSandbox(pool_size=0)
        asb._core = sync_core  # the stand-in host the fixture started
        async with asb.session(tools={"double": double}) as session:
            blob = await session.save()
            restored = await asb.session(restore=blob, tools={"double": double})
            assert isinstance(restored, AsyncSession)
            assert (await restored.run("call double")).value == 42
            one = await session.fork()
            two = await session.fork(2)
            assert isinstance(one, AsyncSession) and [type(s) for s in two] == [AsyncSession, AsyncSession]
            for fork in (one, *two, restored):
                assert (await fork.run("call double")).value == 42
                await fork.close()

    asyncio.run(main())


# -- the real host --------------------------------------------------------------------------------

STATE = """\
import json, random, sys
from wasmbox import tools
data = {"rows": [1, 2, 3], "name": "kept"}

class Point:
    def __init__(self, x, y):
        self.x, self.y = x, y
    def norm2(self):
        return self.x * self.x + self.y * self.y

p = Point(3, 4)
open('notes.txt', 'w').write('written by a run')
sys.path.insert(0, '/sandbox')
import helper
random.seed(1234)
doubled = tools.double(x=21)
"""


def test_a_saved_session_continues_in_a_new_sandbox(sandbox: Sandbox) -> None:
    with sandbox.session(tools={"double": double}) as session:
        session.files.write("helper.py", "def triple(n):\n    return 3 * n\n")
        assert session.run(STATE).ok
        blob = session.save()
        assert isinstance(blob, bytes) and blob.startswith(b"WASMBOX-SESSION\n")
        expected_draw = session.run("random.random()").value
        assert session.run("doubled").value == 42, "the saved session goes on"

    # A new Sandbox is a new host process: nothing but the blob carries the state over.
    with Sandbox(pool_size=0) as other:
        assert other.host_pid != sandbox.host_pid
        with other.session(restore=blob, tools={"double": double}) as restored:
            checks = restored.run(
                "[data, type(p).__name__, p.norm2(), helper.triple(5), 'json' in sys.modules, open('notes.txt').read(), doubled, tools.double(x=5), random.random()]"
            )
            assert checks.ok, checks.stderr
            assert checks.value == [{"rows": [1, 2, 3], "name": "kept"}, "Point", 25, 15, True, "written by a run", 42, 10, expected_draw]
            assert restored.files.read_text("helper.py").startswith("def triple")
            assert restored.run("data['rows'].append(4)\nlen(data['rows'])").value == 4, "and goes on from there"


def test_restoring_needs_the_saved_sessions_host_functions(sandbox: Sandbox) -> None:
    with sandbox.session(tools={"double": double}) as session:
        assert session.run("x = 1").ok
        blob = session.save()
    with pytest.raises(InvalidRequestError, match="double"):
        sandbox.session(restore=blob)
    with pytest.raises(InvalidRequestError, match="javascript"):
        sandbox.session(restore=blob, tools={"double": double}, language="javascript")


def test_forks_start_from_the_parents_state_and_then_diverge(sandbox: Sandbox) -> None:
    with sandbox.session(tools={"double": double}) as parent:
        assert parent.run("import random\nrandom.seed(7)\ncounter = 10\nopen('log.txt', 'w').write('parent')").ok
        forks = parent.fork(3)
        try:
            assert isinstance(forks, list) and len(forks) == 3 and all(isinstance(f, Session) for f in forks)
            assert len({f.id for f in forks} | {parent.id}) == 4
            for i, fork in enumerate(forks):
                assert fork.run(f"counter += {i}\nopen('log.txt', 'a').write(' fork {i}')").ok
            assert [f.run("counter").value for f in forks] == [10, 11, 12]
            assert [f.files.read_text("log.txt") for f in forks] == ["parent fork 0", "parent fork 1", "parent fork 2"]
            assert parent.run("counter").value == 10 and parent.files.read_text("log.txt") == "parent"
            # The random generator's state is copied too: every fork draws what the parent draws next.
            draws = [f.run("random.random()").value for f in forks]
            assert draws == [parent.run("random.random()").value] * 3
            assert [f.run("from wasmbox import tools\ntools.double(x=8)").value for f in forks] == [16] * 3, "forks have the parent's host functions"
        finally:
            for fork in forks:
                fork.close()
        single = parent.fork()
        with single:
            assert isinstance(single, Session) and single.run("counter").value == 10


def test_garbage_and_truncated_blobs_raise_invalid_session_blob(sandbox: Sandbox) -> None:
    with sandbox.session() as session:
        assert session.run("x = 1").ok
        blob = session.save()
    for bad in (b"garbage", b"", blob[: len(blob) // 2], blob[:-1], blob[:40] + bytes([blob[40] ^ 1]) + blob[41:]):
        with pytest.raises(InvalidSessionBlobError) as caught:
            sandbox.session(restore=bad)
        assert caught.value.code == "INVALID_SESSION_BLOB"
    with sandbox.session(restore=blob) as restored:  # the good one still restores on the same host
        assert restored.run("x").value == 1


def test_a_session_holding_a_javascript_object_is_not_saveable_until_it_lets_go(sandbox: Sandbox) -> None:
    with sandbox.session() as session:
        assert session.run("from pyodide.ffi import to_js\nheld = to_js([1, 2])\nkept = 5").ok
        with pytest.raises(SessionNotSaveableError, match="JavaScript"):
            session.save()
        assert session.run("kept").value == 5, "a refused save leaves the session going"
        assert session.run("del held\nimport gc\ngc.collect()").ok
        with sandbox.session(restore=session.save()) as restored:
            assert restored.run("kept").value == 5


def test_a_javascript_session_cannot_be_saved_or_forked(sandbox: Sandbox) -> None:
    with sandbox.session(language="javascript") as session:
        assert session.run("globalThis.n = 1").ok
        for attempt in (session.save, session.fork):
            with pytest.raises(WasmboxError) as caught:
                attempt()
            assert caught.value.code == "NOT_IMPLEMENTED"
        assert session.run("n").value == 1


def test_async_sessions_save_restore_and_fork() -> None:
    async def main() -> None:
        async with AsyncSandbox(pool_size=0) as sb:
            async with sb.session() as session:
                await session.run("items = ['a']")
                blob = await session.save()
                fork = await session.fork()
                await fork.run("items.append('fork')")
                assert (await session.run("items")).value == ["a"]
                assert (await fork.run("items")).value == ["a", "fork"]
                await fork.close()
            async with sb.session(restore=blob) as restored:
                assert (await restored.run("items")).value == ["a"]

    asyncio.run(main())
