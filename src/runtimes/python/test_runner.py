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
compat = types.ModuleType("_wasmbox_compat")
exec(compile(open(os.path.join(here, "compat.py")).read(), "<wasmbox>", "exec"), compat.__dict__)
sys.modules["_wasmbox_compat"] = compat
runner = types.ModuleType("_wasmbox_runner")
exec(compile(open(os.path.join(here, "runner.py")).read(), "<wasmbox>", "exec"), runner.__dict__)
sys.modules["_wasmbox_runner"] = runner
runner.configure(200, 200, 4000)
import time
runner.set_sleep((lambda real: lambda ms: real(ms / 1000) or False)(time.sleep))
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


def test_asyncio_run_gather_and_timeouts_work_as_in_a_script(tmp_path):
    code = (
        "import asyncio\n"
        "async def work(i):\n    await asyncio.sleep(0.01 * i)\n    return i * i\n"
        "async def main():\n"
        "    try:\n        await asyncio.wait_for(asyncio.sleep(5), timeout=0.05)\n"
        "    except TimeoutError:\n        print('timed out')\n"
        "    return await asyncio.gather(*(work(i) for i in range(4)))\n"
        "print(asyncio.run(main()))\n"
        "asyncio.get_event_loop().run_until_complete(work(3))"
    )
    outcome, out, err = run(tmp_path, code)
    assert outcome["status"] == "ok", err
    assert out == "timed out\n[0, 1, 4, 9]\n"
    assert json.loads(outcome["value"]) == 9


def test_top_level_await_runs_and_its_last_expression_is_the_value(tmp_path):
    code = "import asyncio\nasync def f(x):\n    await asyncio.sleep(0)\n    return x + 1\nprint(await f(1))\nawait f(41)"
    outcome, out, err = run(tmp_path, code)
    assert outcome["status"] == "ok", err
    assert (out, json.loads(outcome["value"])) == ("2\n", 42)


def test_a_loop_with_nothing_to_wait_for_says_so_instead_of_hanging(tmp_path):
    outcome, _, _ = run(tmp_path, "import asyncio\nasync def f():\n    await asyncio.get_running_loop().create_future()\nasyncio.run(f())")
    assert outcome["error"]["type"] == "RuntimeError"
    assert "nothing to run and nothing scheduled" in outcome["error"]["message"]


def test_a_thread_pool_gives_its_results_and_a_thread_start_says_what_to_do_instead(tmp_path):
    code = (
        "from concurrent.futures import ThreadPoolExecutor, as_completed\n"
        "with ThreadPoolExecutor(4) as ex:\n"
        "    squares = list(ex.map(lambda x: x * x, range(5)))\n"
        "    futures = [ex.submit(divmod, 7, d) for d in (1, 2, 0)]\n"
        "    done = sorted(str(f.exception() or f.result()) for f in as_completed(futures))\n"
        "import threading\n"
        "try:\n    threading.Thread(target=print).start()\nexcept RuntimeError as e:\n    refused = str(e)\n"
        "[squares, done, refused]"
    )
    outcome, _, err = run(tmp_path, code)
    assert outcome["status"] == "ok", err
    squares, done, refused = json.loads(outcome["value"])
    assert squares == [0, 1, 4, 9, 16]
    assert done == ["(3, 1)", "(7, 0)", "integer division or modulo by zero"]
    assert "ThreadPoolExecutor" in refused and "\n" not in refused


def test_sleep_checks_its_argument_as_cpython_does(tmp_path):
    code = (
        "import time\nerrors = []\n"
        "for bad in (-1, 'x', float('nan')):\n"
        "    try:\n        time.sleep(bad)\n    except (ValueError, TypeError) as e:\n        errors.append(type(e).__name__)\n"
        "time.sleep(0.01)\nerrors"
    )
    outcome, _, err = run(tmp_path, code)
    assert json.loads(outcome["value"]) == ["ValueError", "TypeError", "ValueError"], err


def test_os_abort_ends_the_program_with_status_134_and_keeps_its_output(tmp_path):
    outcome, out, _ = run(tmp_path, "import os\nprint('before')\nos.abort()\nprint('after')")
    assert (outcome["status"], outcome["exitCode"], outcome["error"]["type"]) == ("error", 134, "Aborted")
    assert out == "before\n"


def test_pbkdf2_hmac_gives_the_rfc_6070_vectors(tmp_path):
    # The compat version is installed only where hashlib lacks one; call it directly here.
    code = (
        "import _wasmbox_compat as c\n"
        "[c._pbkdf2_hmac('sha1', b'password', b'salt', 1, 20).hex(), c._pbkdf2_hmac('sha1', b'password', b'salt', 4096, 20).hex(),"
        " c._pbkdf2_hmac('sha1', b'passwordPASSWORDpassword', b'saltSALTsaltSALTsaltSALTsaltSALTsalt', 4096, 25).hex()]"
    )
    outcome, _, err = run(tmp_path, code)
    assert json.loads(outcome["value"]) == [
        "0c60c80f961f0e71f3a9b524af6012062fe037a6",
        "4b007901b765489abead49d926f721d065a429c1",
        "3d2eec4fe41c849b80c8d83662c0e44a8b291a964cf2f07038",
    ], err


PNG_CODE = r"""
import struct, zlib
def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff)
def png(width, height):
    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
class Red:
    def _repr_png_(self):
        return png(2, 2)
"""


def test_display_collects_a_png_as_base64_and_text_plain_always(tmp_path):
    import base64
    outcome, _, _ = run(tmp_path, PNG_CODE + "from wasmbox import display\ndisplay(Red())\nprint('after')")
    assert outcome["status"] == "ok"
    [result] = outcome["results"]
    assert result["isMainResult"] is False and result["error"] is None
    assert base64.b64decode(result["data"]["image/png"]).startswith(b"\x89PNG\r\n\x1a\n")
    assert result["data"]["text/plain"].startswith("<__main__.Red object")


def test_display_is_a_builtin_and_the_last_expression_is_the_main_result(tmp_path):
    code = "class T:\n    def _repr_html_(self): return '<table><tr><td>1</td></tr></table>'\n    def _repr_markdown_(self): return '| a |'\n    def _repr_latex_(self): return '$x$'\n    def _repr_json_(self): return {'a': 1}\n    def _repr_svg_(self): return '<svg/>'\ndisplay(1, T())\nT()"
    outcome, _, _ = run(tmp_path, code)
    assert [r["isMainResult"] for r in outcome["results"]] == [False, False, True]
    assert outcome["results"][0]["data"] == {"text/plain": "1"}
    data = outcome["results"][2]["data"]
    assert set(data) == {"text/html", "text/markdown", "text/latex", "application/json", "image/svg+xml", "text/plain"}
    assert data["application/json"] == {"a": 1} and data["image/svg+xml"] == "<svg/>"


def test_a_last_expression_with_only_text_is_not_a_rich_result(tmp_path):
    assert run(tmp_path, "[1, 2]")[0]["results"] == []


def test_repr_mimebundle_gets_include_and_exclude_and_wins_over_repr_methods(tmp_path):
    code = """
class B:
    def _repr_mimebundle_(self, include=None, exclude=None):
        data = {"text/html": "<b>bundle</b>", "text/markdown": "**b**", "application/vnd.x+json": {"k": [1]}}
        return ({m: v for m, v in data.items() if (include is None or m in include) and m not in (exclude or ())}, {})
    def _repr_html_(self):
        return "<i>method</i>"
display(B())
display(B(), include={"text/html"})
display(B(), exclude={"text/markdown", "text/plain"})
"""
    results = run(tmp_path, code)[0]["results"]
    assert results[0]["data"]["text/html"] == "<b>bundle</b>" and results[0]["data"]["application/vnd.x+json"] == {"k": [1]}
    assert set(results[1]["data"]) == {"text/html"}
    assert set(results[2]["data"]) == {"text/html", "application/vnd.x+json"}


def test_a_raising_wrong_type_or_huge_repr_is_an_error_entry_and_the_run_goes_on(tmp_path):
    code = """
class Bad:
    def _repr_html_(self): raise ValueError("no html")
    def _repr_png_(self): return "not bytes"
    def _repr_svg_(self): return "x" * 20000
    def _repr_markdown_(self): return "fine"
display(Bad())
display(type("C", (), {"_repr_mimebundle_": lambda self, **kw: 42})())
"""
    outcome, _, _ = run(tmp_path, code)
    assert outcome["status"] == "ok"
    first, second = outcome["results"]
    assert set(first["data"]) == {"text/markdown", "text/plain"}
    assert "_repr_html_: ValueError: no html" in first["error"]
    assert "_repr_png_ returned str, expected bytes" in first["error"]
    assert "image/svg+xml is 20000 bytes, over the run's output cap" in first["error"]
    assert "_repr_mimebundle_: TypeError: returned int, expected dict" in second["error"]


def test_rich_results_past_the_output_cap_stop_the_run_and_say_how_much(tmp_path):
    code = "class H:\n    def _repr_html_(self): return 'h' * 4000\nfor i in range(10):\n    try:\n        display(H())\n    except Exception:\n        pass\nprint('not reached')"
    outcome, out, _ = run(tmp_path, code)
    assert "not reached" not in out
    assert len(outcome["results"]) == 2 and outcome["resultsOverLimit"] > 10_000


FAKE_MATPLOTLIB = {
    "matplotlib/__init__.py": "backend = 'webagg'\ndef use(name):\n    global backend\n    backend = name\n",
    "matplotlib/pyplot.py": """
import matplotlib
_figures = {}
class Figure:
    def __init__(self, number): self.number = number
    def savefig(self, buffer, format, **kwargs): buffer.write(b"PNG-" + matplotlib.backend.encode() + b"-" + str(self.number).encode())
    def __repr__(self): return f"<Figure {self.number}>"
def figure(number=None):
    number = number or len(_figures) + 1
    return _figures.setdefault(number, Figure(number))
def get_fignums(): return sorted(_figures)
def close(figure): _figures.pop(figure.number, None)
def show(): raise RuntimeError("the real show() wants a display")
""",
}


def test_matplotlib_uses_agg_and_show_and_open_figures_become_png_results(tmp_path):
    # matplotlib is not installable here: a stand-in package with pyplot's few functions the hook calls.
    import base64
    for name, text in FAKE_MATPLOTLIB.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(text)
    code = "import matplotlib.pyplot as plt\nplt.figure()\nplt.show()\nplt.figure()\nplt.figure()\nprint(plt.get_fignums())"
    outcome, out, err = run(tmp_path, code)
    assert outcome["status"] == "ok", err
    pngs = [base64.b64decode(r["data"]["image/png"]) for r in outcome["results"]]
    assert pngs == [b"PNG-Agg-1", b"PNG-Agg-1", b"PNG-Agg-2"] and out == "[1, 2]\n"


def test_a_bundle_key_that_is_not_a_mime_type_is_an_error_entry(tmp_path):
    code = "class M:\n    def _repr_mimebundle_(self, **kw): return {'text/html; charset=utf-8': 'x', 'text/html': '<b/>'}\ndisplay(M())"
    [result] = run(tmp_path, code)[0]["results"]
    assert result["data"] == {"text/html": "<b/>", "text/plain": result["data"]["text/plain"]}
    assert "is not a MIME type" in result["error"]
