"""``python -m wasmbox batch`` from the installed package: the TypeScript CLI's batch command on the
bundled host under Deno (no Node.js on PATH under run-tests.sh), locally and, when Debian's
``redis-server`` is installed, through a queue on a private redis-server with a worker started the
same way (``python -m wasmbox worker``): BullMQ and ioredis run under Deno's Node compatibility."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

JOBS = [
    {"id": "square", "code": "print(7 * 7)"},
    {"id": 2, "code": "1 / 0"},
    {"id": "loop", "code": "while True: pass", "timeoutMs": 500},
    {"id": "value", "code": "sum(range(10))"},
    {"id": "stderr", "code": "import sys; sys.stderr.write('no\\n'); sys.exit(3)"},
]


def wasmbox(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "wasmbox", *args], capture_output=True, text=True, timeout=timeout)


def results(path: Path) -> dict[object, dict]:
    lines = [json.loads(line) for line in path.read_text("utf-8").splitlines() if line]
    assert len(lines) == len(JOBS), lines
    return {line["id"]: line for line in lines}


def check(by_id: dict[object, dict]) -> None:
    assert set(by_id) == {"square", 2, "loop", "value", "stderr"}
    assert (by_id["square"]["status"], by_id["square"]["stdout"]) == ("ok", "49\n")
    assert (by_id[2]["status"], by_id[2]["error"]["type"]) == ("error", "ZeroDivisionError")
    assert by_id["loop"]["status"] == "timeout"
    assert (by_id["value"]["status"], by_id["value"]["value"]) == ("ok", 45)
    assert (by_id["stderr"]["exitCode"], by_id["stderr"]["stderr"]) == (3, "no\n")


@pytest.fixture
def jobs_file(tmp_path: Path) -> Path:
    path = tmp_path / "jobs.jsonl"
    path.write_text("".join(json.dumps(job) + "\n" for job in JOBS), "utf-8")
    return path


def test_python_m_wasmbox_batch_runs_a_jobs_file_and_writes_one_result_line_per_job(jobs_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "results.jsonl"
    done = wasmbox("batch", str(jobs_file), "-o", str(out), "--concurrency", "2")
    assert done.returncode == 0, done.stderr
    assert "5/5 done" in done.stderr
    check(results(out))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    args = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(tmp_path), "--save", "", "--appendonly", "no", "--maxmemory-policy", "noeviction"]
    server = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.terminate()
        server.wait(10)


def test_python_m_wasmbox_batch_queue_and_worker_run_the_jobs_through_redis_under_deno(jobs_file: Path, tmp_path: Path, redis_url: str) -> None:
    worker = subprocess.Popen(
        [sys.executable, "-m", "wasmbox", "worker", "--queue", redis_url, "--concurrency", "2", "--quiet"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out = tmp_path / "results.jsonl"
        done = wasmbox("batch", str(jobs_file), "-o", str(out), "--queue", redis_url)
        assert done.returncode == 0, done.stderr
        check(results(out))
    finally:
        worker.terminate()
        _, stderr = worker.communicate(timeout=30)
    assert worker.returncode == 143, stderr
