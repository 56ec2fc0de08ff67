"""The Python examples in the project's root README.md run, so that README cannot rot either."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text("utf-8"), flags=re.S) if README.exists() else []


@pytest.mark.skipif(not README.exists(), reason="not run from a checkout of the repository")
def test_the_root_readme_has_a_python_quick_start() -> None:
    assert BLOCKS, "README.md has no python example"


@pytest.mark.parametrize("block", BLOCKS, ids=[f"example-{n}" for n in range(len(BLOCKS))])
def test_the_root_readme_python_example_runs(block: str) -> None:
    exec(compile(block, str(README), "exec"), {"__name__": "readme_example"})
