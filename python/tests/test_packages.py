"""Packages from the wheelhouse, as a Python developer uses them: added with ``python -m wasmbox
packages add`` (the bundled host fetches them from PyPI), then named on the Sandbox, a run or a
session. Real wheels, a real host, real executors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

import wasmbox
from wasmbox import PackageNotFoundError, Sandbox


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = tmp_path_factory.mktemp("wheelhouse")
    added = subprocess.run(
        [sys.executable, "-m", "wasmbox", "packages", "add", "tabulate", "msgspec", "--wheelhouse", str(where)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert added.returncode == 0, added.stderr
    listed = subprocess.run([sys.executable, "-m", "wasmbox", "packages", "list", "--wheelhouse", str(where)], capture_output=True, text=True, timeout=120)
    assert "tabulate" in listed.stdout and "msgspec" in listed.stdout, listed.stdout
    return where


@pytest.fixture(scope="module")
def with_tabulate(wheelhouse: Path) -> Iterator[Sandbox]:
    with Sandbox(pool_size=1, packages=["tabulate"], wheelhouse=wheelhouse) as sb:
        yield sb


def test_a_sandbox_created_with_packages_has_them_imported_in_every_run(with_tabulate: Sandbox) -> None:
    result = with_tabulate.run("import sys, tabulate\n'tabulate' in sys.modules, tabulate.tabulate([[1, 2]])")
    assert result.ok, result.error
    assert result.value == (True, "-  -\n1  2\n-  -")


def test_a_run_adds_packages_of_its_own_including_native_pyodide_wheels(with_tabulate: Sandbox) -> None:
    result = with_tabulate.run("import msgspec\nmsgspec.json.decode(msgspec.json.encode({'a': [1, 2.5]}))", packages=["msgspec"])
    assert result.ok, result.error
    assert result.value == {"a": [1, 2.5]}


def test_a_package_the_wheelhouse_lacks_raises_before_the_run_naming_the_command_that_adds_it(with_tabulate: Sandbox) -> None:
    with pytest.raises(PackageNotFoundError) as raised:
        with_tabulate.run("1", packages=["not-in-the-wheelhouse"])
    assert "wasmbox packages add not-in-the-wheelhouse" in str(raised.value)
    assert isinstance(raised.value, wasmbox.InvalidRequestError)


def test_a_session_opens_with_its_packages(with_tabulate: Sandbox) -> None:
    with with_tabulate.session(packages=["msgspec"]) as session:
        session.run("import msgspec\nm = msgspec.json.encode([1])")
        assert session.run("m.decode()").value == "[1]"


def test_zoneinfo_has_the_iana_data_with_no_package_named(sandbox: Sandbox) -> None:
    result = sandbox.run("from zoneinfo import ZoneInfo\nfrom datetime import datetime\nstr(datetime(2024, 1, 1, tzinfo=ZoneInfo('America/New_York')).utcoffset())")
    assert result.ok, result.error
    assert result.value == "-1 day, 19:00:00"


def test_packages_must_be_a_list_of_names() -> None:
    with pytest.raises(ValueError):
        Sandbox(packages="sympy")  # type: ignore[arg-type]


def test_a_sandbox_created_with_a_package_the_wheelhouse_lacks_raises_package_not_found(wheelhouse: Path) -> None:
    sb = Sandbox(pool_size=0, packages=["not-in-the-wheelhouse"], wheelhouse=wheelhouse)
    try:
        with pytest.raises(PackageNotFoundError) as raised:
            sb.run("1")
    finally:
        sb.close()
    assert "wasmbox packages add not-in-the-wheelhouse" in str(raised.value)
