"""Shared fixtures: one real Sandbox (a real Deno host, real executors) for the whole session."""

from __future__ import annotations

import base64
import json
import os
import signal
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

import wasmbox
from wasmbox import Sandbox

REPO = Path(__file__).resolve().parents[2]
WIRE_FIXTURES = Path(os.environ.get("WASMBOX_WIRE_FIXTURES", REPO / "test" / "fixtures" / "wire"))


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(pool_size=2) as sb:
        yield sb


def load_fixtures() -> list[tuple[str, dict[str, Any]]]:
    return [(path.stem, json.loads(path.read_text("utf-8"))) for path in sorted(WIRE_FIXTURES.glob("*.json"))]


def unwrap_bytes(value: Any) -> Any:
    """Fixture `call` values: {"$bytes": base64} is bytes."""
    if isinstance(value, dict) and set(value) == {"$bytes"}:
        return base64.b64decode(value["$bytes"])
    if isinstance(value, dict):
        return {key: unwrap_bytes(item) for key, item in value.items()}
    return value


def assets_dir() -> str:
    return str(Path(wasmbox.__file__).resolve().parent / "_assets")


def pids_with(text: str) -> list[int]:
    """Live processes (zombies excluded) whose command line mentions ``text``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if text in cmdline and state != "Z":
            found.append(int(entry.name))
    return found


def children_of(pid: int) -> list[int]:
    """Every descendant of ``pid``."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                pass
    out, frontier = [], [pid]
    while frontier:
        current = frontier.pop()
        for child, parent in parents.items():
            if parent == current:
                out.append(child)
                frontier.append(child)
    return out


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_until(predicate: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.05)


def kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def executors_of(host: int | None) -> list[int]:
    """The executor processes (and their bubblewrap wrappers) a host has started and not yet lost."""
    if host is None:
        return []
    executors = set(pids_with("executor/main.js"))
    return [pid for pid in children_of(host) if pid in executors]
