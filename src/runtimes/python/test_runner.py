"""The runner (runner.py) and the guest module (wasmbox_guest.py) under plain CPython.

Inside wasmbox they run in Pyodide, restored from the memory snapshot; here each case loads them
into a fresh CPython subprocess (the runner replaces __main__, sys.argv and os.environ, so it gets
an interpreter of its own) with /sandbox mapped to a temporary directory. Run with pytest.
"""

import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

HARNESS = r"""
import json, os, sys, types
here, sandbox, request = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
_chdir = os.chdir
os.chdir = lambda path: _chdir(sandbox if path == "/sandbox" else path)
guest = types.ModuleType("wasmbox")
exec(compile(open(os.path.join(here, "wasmbox_guest.py")).read(), "<wasmbox>", "exec"), guest.__dict__)
sys.modules["wasmbox"] = guest
runner = types.ModuleType("_wasmbox_runner")
exec(compile(open(os.path.join(here, "runner.py")).read(), "<wasmbox>", "exec"), runner.__dict__)
sys.modules["_wasmbox_runner"] = runner
runner.configure(200, 200, 4000)
runner.set_host_call(lambda name, args: json.dumps({"ok": True, "value": [name, json.loads(args)]}))
outcome = runner.run(request["code"], "<string>", json.dumps(request.get("argv", [])), json.dumps(request.get("env", {})), 10_000, False, json.dumps(request.get("tools", [])))
sys.stdout.flush()
print("@@OUTCOME@@" + outcome)
"""


def run(tmp_path, code, **request):
    done = subprocess.run(
        [sys.executable, "-c", HARNESS, str(HERE), str(tmp_path), json.dumps({"code": code, **request})],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    out, _, outcome = done.stdout.rpartition("@@OUTCOME@@")
    return json.loads(outcome), out, done.stderr


def test_the_value_of_the_last_expression_comes_back_as_json_and_repr(tmp_path):
    outcome, out, _ = run(tmp_path, "print('hi')\n{'a': [1, 2.5]}")
    assert out == "hi\n"
    assert outcome["status"] == "ok" and outcome["exitCode"] == 0
    assert json.loads(outcome["value"]) == {"a": [1, 2.5]}
    assert outcome["valueRepr"] == "{'a': [1, 2.5]}"


def test_an_exception_is_reported_with_a_traceback_of_the_users_code_only(tmp_path):
    outcome, _, err = run(tmp_path, "def f(x):\n    return 1 / x\nf(0)")
    assert outcome["status"] == "error" and outcome["exitCode"] == 1
    assert outcome["error"]["type"] == "ZeroDivisionError"
    assert 'File "<string>", line 2, in f' in outcome["error"]["traceback"]
    assert "<wasmbox>" not in outcome["error"]["traceback"]
    assert err.endswith("ZeroDivisionError: division by zero\n")


def test_sys_exit_gives_the_shell_visible_code_and_a_message_goes_to_stderr(tmp_path):
    assert run(tmp_path, "import sys\nsys.exit(0)")[0]["status"] == "ok"
    outcome, _, _ = run(tmp_path, "raise SystemExit(258)")
    assert (outcome["status"], outcome["exitCode"]) == ("error", 2)
    outcome, _, err = run(tmp_path, "import sys\nsys.exit('bad input')")
    assert (outcome["exitCode"], outcome["error"]["message"]) == (1, "bad input")
    assert "bad input" in err


def test_argv_env_and_the_working_directory_are_the_runs(tmp_path):
    (tmp_path / "data.txt").write_text("from a file")
    outcome, _, _ = run(tmp_path, "import os, sys\n[sys.argv, dict(os.environ), open('data.txt').read()]", argv=["a", "b c"], env={"ONLY": "this"})
    assert json.loads(outcome["value"]) == [["-c", "a", "b c"], {"ONLY": "this"}, "from a file"]


def test_long_text_is_cut_at_the_configured_bounds_and_a_hostile_repr_cannot_break_the_report(tmp_path):
    outcome, _, _ = run(tmp_path, "'x' * 1000")
    assert outcome["value"] is None or len(outcome["value"]) <= 10_000
    assert outcome["valueRepr"].endswith("…") and len(outcome["valueRepr"]) == 201
    outcome, _, _ = run(tmp_path, "class Evil:\n    def __repr__(self):\n        raise RuntimeError('no')\nEvil()")
    assert outcome["status"] == "ok" and outcome["valueRepr"] == "<repr failed: RuntimeError>"


def test_a_registered_host_function_is_called_with_keyword_arguments_and_others_are_refused(tmp_path):
    outcome, _, _ = run(tmp_path, "from wasmbox import tools\ntools.lookup(key='x')", tools=["lookup"])
    assert json.loads(outcome["value"]) == ["lookup", {"key": "x"}]
    outcome, _, _ = run(tmp_path, "from wasmbox import tools\ntools.other()", tools=["lookup"])
    assert outcome["error"]["type"] == "AttributeError"
    assert "no host function named 'other'" in outcome["error"]["message"]
