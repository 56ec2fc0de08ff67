"""Every Python example in python/README.md, and in the project's README.md, runs, so neither can rot."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Iterator

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text("utf-8"), flags=re.S)
# The project's README (absent from an sdist's tree): its Python examples run here too.
PROJECT_README = Path(__file__).resolve().parents[2] / "README.md"
PROJECT_BLOCKS = re.findall(r"```python\n(.*?)```", PROJECT_README.read_text("utf-8"), flags=re.S) if PROJECT_README.exists() else []


@pytest.fixture(scope="module", autouse=True)
def wheelhouse_with_the_readme_packages() -> Iterator[None]:
    """The README's "Packages" example names sympy, networkx and pydantic: add them first, as it
    says, into the wheelhouse the TypeScript tests share (downloaded once per machine)."""
    where = os.environ.get("WASMBOX_TEST_WHEELHOUSE") or os.path.join(tempfile.gettempdir(), "wasmbox-test-wheelhouse")
    added = subprocess.run(
        [sys.executable, "-m", "wasmbox", "packages", "add", "sympy", "networkx", "pydantic", "--wheelhouse", where],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert added.returncode == 0, added.stderr
    before = os.environ.get("WASMBOX_WHEELHOUSE")
    os.environ["WASMBOX_WHEELHOUSE"] = where
    yield
    if before is None:
        del os.environ["WASMBOX_WHEELHOUSE"]
    else:
        os.environ["WASMBOX_WHEELHOUSE"] = before


def test_the_readme_has_python_examples() -> None:
    assert len(BLOCKS) >= 3


@pytest.mark.parametrize("block", BLOCKS, ids=[f"example-{n}" for n in range(len(BLOCKS))])
def test_the_readme_example_runs(block: str) -> None:
    exec(compile(block, str(README), "exec"), {"__name__": "readme_example"})


@pytest.mark.parametrize("block", PROJECT_BLOCKS, ids=[f"project-example-{n}" for n in range(len(PROJECT_BLOCKS))])
def test_the_project_readme_python_example_runs(block: str) -> None:
    exec(compile(block, str(PROJECT_README), "exec"), {"__name__": "readme_example"})
