"""The golden exchanges of test/fixtures/wire, also checked by test/wire-fixtures.test.ts on the TypeScript side."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from conftest import load_fixtures, unwrap_bytes
from wasmbox import RunResult, Sandbox, WasmboxError
from wasmbox._errors import error_from_wire
from wasmbox._wire import decode_reply, encode_run_request

FIXTURES = load_fixtures()
IDS = [name for name, _ in FIXTURES]
CAMEL = {"exitCode": "exit_code", "valueRepr": "value_repr", "durationMs": "duration_ms", "cpuTimeMs": "cpu_time_ms"}


def call_kwargs(fixture: dict[str, Any]) -> dict[str, Any]:
    return unwrap_bytes({k: v for k, v in fixture["call"].items() if k not in ("on_stdout", "on_stderr")})


def streams(fixture: dict[str, Any]) -> bool:
    return bool(fixture["call"].get("on_stdout") or fixture["call"].get("on_stderr"))


def expected_field(key: str, value: Any) -> Any:
    """A wire response field as the RunResult field it decodes to (only the sub-keys the fixture gives)."""
    if key == "files":
        return {f["path"]: base64.b64decode(f["content"]) if f["encoding"] == "base64" else f["content"].encode() for f in value}
    return value


def actual_field(result: RunResult, key: str, expected: Any) -> Any:
    # The fixtures hold the wire's plain JSON value; RunResult.value is the exact Python value.
    value = getattr(result, "value_json" if key == "value" else CAMEL.get(key, key))
    if key == "error" and value is not None and isinstance(expected, dict):
        return {k: getattr(value, k) for k in expected}
    return dict(value) if key == "files" else value


def check_result(result: RunResult, response: dict[str, Any]) -> None:
    for key, value in response.items():
        if key == "id":
            continue
        assert actual_field(result, key, value) == expected_field(key, value), key


def test_there_are_fixtures_to_check() -> None:
    assert len(FIXTURES) >= 10


@pytest.mark.parametrize(("name", "fixture"), FIXTURES, ids=IDS)
def test_the_client_encodes_the_call_into_the_fixture_request(name: str, fixture: dict[str, Any]) -> None:
    request = encode_run_request(fixture["request"]["id"], stream=streams(fixture), **call_kwargs(fixture))
    assert request == fixture["request"]
    assert next(iter(request)) == "id", "id comes first, so the host can read it from a line it refuses"


@pytest.mark.parametrize(("name", "fixture"), FIXTURES, ids=IDS)
def test_the_client_decodes_the_fixture_response(name: str, fixture: dict[str, Any]) -> None:
    response = dict(fixture["response"], durationMs=12.5, cpuTimeMs=40)
    if "status" in response:
        if isinstance(response.get("error"), dict):
            # A fixture may leave the message and traceback out (see its note); the wire always has them.
            response["error"] = {"message": "(left out by the fixture)", "traceback": "", **response["error"]}
        result = decode_reply(response)
        check_result(result, fixture["response"])
        assert result.duration_ms == 12.5
        assert result.cpu_time_ms == 40
        assert result.ok == (response["status"] == "ok")
    else:
        # A fixture may leave the message out (see its note); the wire always has one.
        response["error"] = {"message": "(left out by the fixture)", **response["error"]}
        with pytest.raises(WasmboxError) as caught:
            decode_reply(response)
        assert caught.value.code == response["error"]["code"]
        assert caught.value.message == response["error"]["message"]
        assert type(caught.value) is type(error_from_wire(response["error"]))


def test_the_fixture_runs_give_the_fixture_responses_through_the_real_host(sandbox: Sandbox) -> None:
    """Every fixture's call through Sandbox.run on the Deno host, all at once from threads."""
    from concurrent.futures import ThreadPoolExecutor

    def run(fixture: dict[str, Any]) -> tuple[Any, dict[str, str]]:
        streamed = {"stdout": "", "stderr": ""}

        def collector(kind: str):
            def collect(chunk: str) -> None:
                streamed[kind] += chunk

            return collect

        extra = {"on_stdout": collector("stdout"), "on_stderr": collector("stderr")} if streams(fixture) else {}
        try:
            return sandbox.run(**call_kwargs(fixture), **extra), streamed
        except WasmboxError as error:
            return error, streamed

    with ThreadPoolExecutor(max_workers=len(FIXTURES)) as pool:
        outcomes = dict(zip(IDS, pool.map(run, [f for _, f in FIXTURES])))
    for name, fixture in FIXTURES:
        outcome, streamed = outcomes[name]
        response = fixture["response"]
        if "status" in response:
            assert isinstance(outcome, RunResult), f"{name}: {outcome!r}"
            check_result(outcome, response)
            assert outcome.duration_ms > 0
            if "streamed" in fixture:
                assert streamed == fixture["streamed"], name
        else:
            assert isinstance(outcome, WasmboxError), f"{name}: {outcome!r}"
            assert outcome.code == response["error"]["code"], name
            assert outcome.message == response["error"].get("message", outcome.message), name


def test_the_error_codes_are_those_of_the_typescript_side() -> None:
    import re

    from conftest import REPO
    from wasmbox import ERROR_CODES

    source = (REPO / "src" / "core" / "errors.ts").read_text("utf-8")
    union = re.search(r"type WasmboxErrorCode =(.*?);", source, flags=re.S)
    assert union, "src/core/errors.ts declares WasmboxErrorCode"
    assert sorted(ERROR_CODES) == sorted(re.findall(r'"([A-Z_]+)"', union.group(1)))
    assert len(set(ERROR_CODES)) == len(ERROR_CODES)
