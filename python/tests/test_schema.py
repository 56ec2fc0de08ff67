"""The client encodes runs from the host's own schema: every field in it is a keyword of each run method."""

from __future__ import annotations

import inspect
from typing import Any, Callable

import pytest

import wasmbox
from wasmbox._errors import InvalidRequestError
from wasmbox._schema import RUN_FIELDS, SESSION_FIELDS, snake_case
from wasmbox._wire import encode_run_request

RUN_METHODS: dict[str, tuple[Callable[..., Any], set[str]]] = {
    "Sandbox.run": (wasmbox.Sandbox.run, set()),
    "AsyncSandbox.run": (wasmbox.AsyncSandbox.run, set()),
    "Session.run": (wasmbox.Session.run, set()),
    "AsyncSession.run": (wasmbox.AsyncSession.run, set()),
    "run_code": (wasmbox.run_code, {"entry_path"}),
    "run_fs": (wasmbox.run_fs, {"code"}),
}


def test_the_schema_names_every_run_field_the_host_takes() -> None:
    assert {"code", "entry_path", "language", "wasm", "files", "stdin", "argv", "env", "timeout_ms", "memory_limit_bytes", "max_output_bytes"} <= set(RUN_FIELDS)
    assert {"idle_timeout_ms", "max_lifetime_ms", "tools"} <= set(SESSION_FIELDS)


@pytest.mark.parametrize("name", RUN_METHODS)
def test_every_schema_field_is_a_keyword_of_each_run_method(name: str) -> None:
    method, left_out = RUN_METHODS[name]
    parameters = set(inspect.signature(method).parameters)
    missing = set(RUN_FIELDS) - left_out - parameters
    assert not missing, f"{name} lacks {sorted(missing)}: add the keyword (run_fields(locals()) sends it)"


def test_snake_case_names_follow_the_wire_names() -> None:
    assert snake_case("maxOutputFilesTotalBytes") == "max_output_files_total_bytes"
    assert all(snake_case(field.wire) == name for name, field in RUN_FIELDS.items())


def test_each_kind_is_encoded_in_its_wire_form() -> None:
    request = encode_run_request(
        7,
        code="print(1)",
        wasm=b"\0asm",
        files={"a.txt": "hi", "b.bin": b"\xff"},
        stdin=b"\x00",
        argv=["x"],
        env={"K": "V"},
        timeout_ms=5,
        max_stdin_bytes=10,
    )
    assert request == {
        "id": 7,
        "code": "print(1)",
        "language": "python",
        "wasm": {"encoding": "base64", "content": "AGFzbQ=="},
        "files": {"a.txt": "hi", "b.bin": {"encoding": "base64", "content": "/w=="}},
        "stdin": {"encoding": "base64", "content": "AA=="},
        "argv": ["x"],
        "env": {"K": "V"},
        "timeoutMs": 5,
        "maxStdinBytes": 10,
    }


def test_an_unknown_keyword_is_refused_naming_the_options() -> None:
    with pytest.raises(InvalidRequestError, match="unknown run option 'timeout'"):
        encode_run_request(1, code="1", timeout=5)


def test_a_wasi_module_runs_from_bytes(sandbox: wasmbox.Sandbox) -> None:
    # The smallest WASI command: _start returns at once (exit status 0).
    module = bytes.fromhex(
        "0061736d01000000010401600000030201000503010001071302066d656d6f72790200065f737461727400000a040102000b"
    )
    result = sandbox.run(language="wasi", wasm=module)
    assert result.status == "ok", result
    assert result.exit_code == 0


@pytest.mark.parametrize("method", [wasmbox.Sandbox.session, wasmbox.AsyncSandbox.session], ids=["Sandbox.session", "AsyncSandbox.session"])
def test_every_session_option_is_a_keyword_of_each_session_method(method: Callable[..., Any]) -> None:
    missing = set(SESSION_FIELDS) - set(inspect.signature(method).parameters)
    assert not missing, f"lacks {sorted(missing)}"
