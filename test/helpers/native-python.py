"""Runs one program under native CPython the way wasmbox's Python runner does, for comparison.

    python3 native-python.py RESULT_PATH PROGRAM_PATH [ARG...]

Like src/runtimes/python/runner.py `run()` for a request with `code`:
- sys.argv is ["-c", ARG...], __name__ is "__main__" in a fresh module (no __file__), the source is
  in linecache under the filename "<string>", and os.environ holds nothing (a run's env is empty
  unless the request sets it);
- the working directory is a fresh, empty temporary directory (the sandbox's is /sandbox), also
  sys.path[0]; it is removed afterwards;
- stdin is this process's stdin;
- local time is UTC, as in the sandbox (TZ is set to UTC before the environment is emptied);
- if the program's last statement is an expression, everything before it is executed and then the
  expression is evaluated; a value other than None gives `valueRepr` (its repr) and `value` (its JSON
  when it converts exactly, by the runner's rules), None gives neither.
Top-level `await` is accepted as the sandbox, Jupyter and `python -m asyncio` accept it: the
program runs in one event loop, the final awaited expression's result is the value.

The outcome goes to RESULT_PATH as one JSON object, so stdout stays exactly the program's:
{"status": "ok"|"error", "exitCode": int, "valueRepr": str|null, "value": <JSON>|null,
 "valueJson": str|null, "valueLossless": <tagged JSON, docs/values.md>|null, "error": {"type", "message"}|null}
An uncaught exception prints its traceback to stderr, as the sandbox does.
"""
import ast
import asyncio
import builtins
import inspect
import json
import linecache
import os
import shutil
import sys
import tempfile
import time
import traceback
import types

_MAX_VALUE_BYTES = 1 << 20


def _runner():
    """The sandbox's own runner (src/runtimes/python/runner.py), loaded under native CPython for its
    value encoders: the comparison then checks that the sandbox's value reaches the caller with
    every Python type, by the same rules (JSON where exact, the lossless tagged form)."""
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "src", "runtimes", "python")
    modules = {}
    for name, filename in (("_wasmbox_compat", "compat.py"), ("_wasmbox_runner", "runner.py")):
        module = types.ModuleType(name)
        with open(os.path.join(here, filename)) as source:
            exec(compile(source.read(), "<wasmbox>", "exec"), module.__dict__)
        sys.modules[name] = modules[name] = module
    for name in modules:
        del sys.modules[name]  # out of the program's sight
    return modules["_wasmbox_runner"]


def _is_coroutine_code(code):
    return bool(code.co_flags & inspect.CO_COROUTINE)


def main():
    result_path, program_path, *args = sys.argv[1:]
    with open(program_path, encoding="utf-8") as f:
        source = f.read()
    filename = "<string>"
    result_path = os.path.abspath(result_path)

    workdir = tempfile.mkdtemp(prefix="wasmbox-native-")
    os.chdir(workdir)
    sys.argv = ["-c", *args]
    sys.path[0] = workdir
    os.environ["TZ"] = "UTC"
    time.tzset()
    os.environ.clear()  # the C library keeps the UTC it loaded
    module = types.ModuleType("__main__")
    module.__dict__["__builtins__"] = builtins
    sys.modules["__main__"] = module
    scope = module.__dict__
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)

    outcome = {"status": "ok", "exitCode": 0, "valueRepr": None, "value": None, "valueJson": None, "valueLossless": None, "error": None}
    loop = None
    try:
        flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
        tree = ast.parse(source, filename)
        last = None
        if tree.body and isinstance(tree.body[-1], ast.Expr):
            last = ast.Expression(tree.body.pop().value)
        body = compile(tree, filename, "exec", flags=flags)
        last_code = compile(last, filename, "eval", flags=flags) if last is not None else None
        if _is_coroutine_code(body) or (last_code is not None and _is_coroutine_code(last_code)):
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
        if _is_coroutine_code(body):
            loop.run_until_complete(eval(body, scope))
        else:
            exec(body, scope)
        if last_code is not None:
            value = eval(last_code, scope)
            if _is_coroutine_code(last_code):
                value = loop.run_until_complete(value)
            if value is not None:
                outcome["valueRepr"] = repr(value)
                runner = _runner()
                outcome["valueJson"] = runner._json_value(value, _MAX_VALUE_BYTES)
                outcome["value"] = json.loads(outcome["valueJson"]) if outcome["valueJson"] is not None else None
                lossless = runner._lossless_value(value, _MAX_VALUE_BYTES)
                outcome["valueLossless"] = json.loads(lossless) if lossless is not None else None
    except SystemExit as exc:
        code = _runner()._exit_code(exc)
        outcome["exitCode"] = code
        if code != 0:
            outcome["status"] = "error"
            outcome["error"] = {"type": "SystemExit", "message": str(code), "traceback": ""}
    except BaseException as exc:
        text = "".join(traceback.format_exception(exc))
        sys.stderr.write(text)
        outcome["status"] = "error"
        outcome["exitCode"] = 1
        outcome["error"] = {"type": type(exc).__name__, "message": str(exc), "traceback": text}
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except BaseException:
                pass
        if loop is not None:
            loop.close()
        os.chdir("/")
        shutil.rmtree(workdir, ignore_errors=True)
    with open(result_path, "w", encoding="utf-8") as f:
        json.dump(outcome, f)


if __name__ == "__main__":
    main()
