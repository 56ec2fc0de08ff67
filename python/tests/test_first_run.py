"""The first start on a machine, from Python: the host's preparation reaches the ``wasmbox`` logger."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from wasmbox import Sandbox


def test_a_first_start_on_an_empty_cache_logs_what_it_makes_and_when_it_is_done(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="wasmbox")
    env = {**os.environ, "WASMBOX_CACHE_DIR": str(tmp_path / "cache")}
    with Sandbox(pool_size=0, host_env=env) as sandbox:
        assert sandbox.run("print('after the snapshot')").stdout == "after the snapshot\n"
    messages = [record.getMessage() for record in caplog.records if record.name == "wasmbox"]
    assert any("making the memory snapshot for Python (once per machine)" in m for m in messages), messages
    assert any("making the memory snapshot for Python: done in" in m for m in messages), messages
