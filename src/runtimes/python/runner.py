"""_wasmbox_runner: runs one program in the interpreter and reports its outcome as JSON text.

Executed once inside Pyodide, before the memory snapshot is taken (src/runtimes/python/worker.ts),
so every executor starts with it and the common stdlib modules already imported. Plain CPython can
import it too: src/runtimes/python/test_runner.py tests it there.
"""
import ast, builtins, json, linecache, os, random, sys, traceback, types
import _wasmbox_compat as _compat

# Bounds on the text a result carries (valueRepr, error message, traceback). configure() sets them
# from src/core/limits.ts, their one source, before the memory snapshot is taken.
_REPR_MAX_CHARS = 0
_MESSAGE_MAX_CHARS = 0
_TRACEBACK_MAX_CHARS = 0
# Bound before any guest code runs: a guest that patches json.dumps (say, to None) must not break
# the report of its own run.
_json_dumps = json.dumps
_json_loads = json.loads
# The generator's state is part of the memory snapshot, so every run would draw the same numbers:
# each fresh interpreter reseeds it from os.urandom (crypto.getRandomValues) before guest code.
_reseed_random = random._inst.seed
_INTERNAL_PATH_PARTS = ("/_pyodide/", "/pyodide/", "<wasmbox>")


class _BlockedImports:
    """A meta-path finder that refuses the modules that hand guest code the executor's JS realm."""

    BLOCKED = frozenset({"js", "pyodide_js"})

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in self.BLOCKED:
            raise ImportError(f"module {name!r} is not available in the wasmbox sandbox")
        return None


def harden():
    for name in list(sys.modules):
        if name.split(".")[0] in _BlockedImports.BLOCKED:
            del sys.modules[name]
    sys.meta_path.insert(0, _BlockedImports())
    # os.system() reaches into the JS runtime's environment and kills the interpreter with a
    # permission error; make it (and os.popen) fail like any missing shell instead.
    def _no_subprocess(*args, **kwargs):
        import errno
        raise OSError(errno.ENOSYS, "there are no subprocesses in the wasmbox sandbox")
    for _name in ("system", "popen"):
        if hasattr(os, _name):
            setattr(os, _name, _no_subprocess)
    try:
        # Pyodide's fatal-error handler would dump internal frames onto the guest's stdout.
        import faulthandler
        faulthandler.disable()
    except Exception:
        pass
    try:
        import pyodide.code
        if hasattr(pyodide.code, "run_js"):
            del pyodide.code.run_js
    except Exception:
        pass


def _is_internal(filename):
    return any(part in filename for part in _INTERNAL_PATH_PARTS)


def _user_traceback(exc, filename):
    """Formats like CPython, starting at the user's code and without the runner's or Pyodide's frames."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename != filename:
        tb = tb.tb_next
    exc.__traceback__ = tb
    te = traceback.TracebackException(type(exc), exc, tb, compact=True)
    seen = set()
    pending = [te]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        current.stack = traceback.StackSummary.from_list(
            [frame for frame in current.stack if not _is_internal(frame.filename)]
        )
        pending.extend(e for e in (current.__cause__, current.__context__) if e is not None)
    return "".join(te.format())


def _cut(text, limit):
    return text if len(text) <= limit else text[:limit] + "…"


def _cut_start(text, limit):
    """Keeps the end of a long traceback: the innermost frames and the exception are there."""
    return text if len(text) <= limit else "…" + text[-limit:]


def _safe_repr(value):
    try:
        text = repr(value)
    except BaseException as exc:  # a hostile __repr__ must not break the result
        return f"<repr failed: {type(exc).__name__}>"
    if len(text) > _REPR_MAX_CHARS:
        text = text[:_REPR_MAX_CHARS] + "…"
    return text


def _safe_str(value):
    try:
        return str(value)
    except BaseException as exc:  # a hostile __str__ must not break the result
        return f"<str failed: {type(exc).__name__}>"


_CO_COROUTINE = 0x0080  # inspect.CO_COROUTINE: code compiled from a top-level `await`
_TOP_LEVEL_AWAIT = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT

_SAFE_INTEGER = 2**53 - 1  # beyond it a JSON number loses digits in JavaScript and most parsers


def _exact_in_json(value, depth=0):
    if depth > 200:
        return False
    if isinstance(value, bool) or value is None or isinstance(value, (str, float)):
        return True
    if isinstance(value, int):
        return -_SAFE_INTEGER <= value <= _SAFE_INTEGER
    if isinstance(value, dict):
        return all(_exact_in_json(v, depth + 1) for v in value.values())
    if isinstance(value, (list, tuple)):
        return all(_exact_in_json(v, depth + 1) for v in value)
    return True


def _json_value(value, max_bytes):
    """The value as JSON text, or None when it does not convert exactly (valueRepr still has it)."""
    try:
        text = _json_dumps(value, allow_nan=False)
    except BaseException:
        return None
    if len(text) > max_bytes or not _exact_in_json(value):
        return None
    return text


class _NotLossless(Exception):
    pass


def _lossless_tree(value, depth):
    """The value in the tagged JSON form (docs/values.md): plain JSON where that is exact, a
    one-key {"$tag": ...} object where it is not. Raises _NotLossless for anything else."""
    if depth > 100:
        raise _NotLossless
    kind = type(value)
    if value is None or kind is bool or kind is str:
        return value
    if kind is int:
        return value if -_SAFE_INTEGER <= value <= _SAFE_INTEGER else {"$int": str(value)}
    if kind is float:
        # Integral floats (2.0, -0.0) would come back as ints from JSON; nan and inf have no JSON.
        if value != value or value in (_INF, -_INF) or value.is_integer():
            return {"$float": repr(value)}
        return value
    if kind is list:
        return [_lossless_tree(v, depth + 1) for v in value]
    if kind is tuple:
        return {"$tuple": [_lossless_tree(v, depth + 1) for v in value]}
    if kind is dict:
        if all(type(k) is str and not k.startswith("$") for k in value):
            return {k: _lossless_tree(v, depth + 1) for k, v in value.items()}
        return {"$dict": [[_lossless_tree(k, depth + 1), _lossless_tree(v, depth + 1)] for k, v in value.items()]}
    if kind is bytes or kind is bytearray:
        import base64
        return {"$" + kind.__name__: base64.b64encode(value).decode("ascii")}
    if kind is set or kind is frozenset:
        items = [_lossless_tree(v, depth + 1) for v in value]
        try:
            items.sort(key=_json_dumps)  # a stable order for equal sets
        except Exception:
            pass
        return {"$" + kind.__name__: items}
    if kind is complex:
        return {"$complex": [_lossless_tree(value.real, depth + 1), _lossless_tree(value.imag, depth + 1)]}
    name = kind.__module__ + "." + kind.__qualname__
    if name in ("datetime.datetime", "datetime.date", "datetime.time"):
        return {"$" + kind.__name__: value.isoformat()}
    if name == "datetime.timedelta":
        return {"$timedelta": [value.days, value.seconds, value.microseconds]}
    if name == "decimal.Decimal":
        return {"$decimal": str(value)}
    if name == "fractions.Fraction":
        return {"$fraction": [_lossless_tree(value.numerator, depth + 1), _lossless_tree(value.denominator, depth + 1)]}
    if name == "uuid.UUID":
        return {"$uuid": str(value)}
    raise _NotLossless


_INF = float("inf")


def _lossless_value(value, max_bytes):
    """The value in the tagged form as JSON text, or None when it has a part the form cannot carry
    (an arbitrary object: valueRepr still shows it) or does not fit max_bytes."""
    try:
        text = _json_dumps(_lossless_tree(value, 0), allow_nan=False)
    except BaseException:
        return None
    return text if len(text) <= max_bytes else None


def _exit_code(exc):
    code = exc.code
    if code is None:
        return 0
    if isinstance(code, bool):
        return int(code)
    if isinstance(code, int):
        return code & 0xFF  # what a POSIX shell would see, as with CPython
    try:
        print(code, file=sys.stderr)
    except BaseException:
        pass
    return 1



# --- Rich results (issue 16): Jupyter's display protocol -------------------------------------------
# display(obj) and the last expression's value give bundles of every format an object offers, as
# IPython's formatters collect them: _repr_mimebundle_ first, then each _repr_*_ method for the
# formats it did not give, and always text/plain. Binary formats are base64 text, JSON formats a
# JSON value, the others text. A formatter that raises, returns the wrong type or is over the run's
# output cap is named in the bundle's "error" and left out; the run goes on.
_BINARY_MIMES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
_REPR_METHODS = (
    ("image/png", "_repr_png_"),
    ("image/jpeg", "_repr_jpeg_"),
    ("image/svg+xml", "_repr_svg_"),
    ("text/html", "_repr_html_"),
    ("text/markdown", "_repr_markdown_"),
    ("text/latex", "_repr_latex_"),
    ("application/json", "_repr_json_"),
)
_MAX_MIMES = 32
# The MIME types the host accepts (src/host/run-outcome.ts MIME_TYPE); others are error entries.
import re as _re
_MIME_TYPE = _re.compile(r"[\w.+-]{1,60}/[\w.+-]{1,100}", _re.ASCII)
_results = []  # this run's bundles, in the order displayed
_results_bytes = 0
_results_over = 0  # bytes of the first bundle that took the results past the cap, else 0
_max_results_bytes = 0


class _OutputLimit(BaseException):
    """Raised by display() past the output cap: a BaseException, so `except Exception` keeps going."""


def _is_json_mime(mime):
    return mime == "application/json" or mime.endswith("+json")


def _format_value(mime, value, where):
    """The value as it goes into the bundle; raises TypeError naming where it came from."""
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], dict):
        value = value[0]  # (data, metadata), as IPython's formatters allow
    if mime in _BINARY_MIMES:
        if isinstance(value, (bytes, bytearray, memoryview)):
            import base64
            return base64.b64encode(bytes(value)).decode("ascii")
        if isinstance(value, str) and where == "_repr_mimebundle_":  # already base64, as bundles give it
            return value
        raise TypeError(f"{where} returned {type(value).__name__}, expected bytes")
    if _is_json_mime(mime):
        if isinstance(value, (str, bytes)) and mime != "application/json":
            value = _json_loads(value)
        _json_dumps(value, allow_nan=False)  # raises when it is not JSON
        return value
    if isinstance(value, str):
        return value
    raise TypeError(f"{where} returned {type(value).__name__}, expected str")


def _value_size(value):
    return len(value) if isinstance(value, str) else len(_json_dumps(value, allow_nan=False))


def _describe(exc):
    return _cut(f"{type(exc).__name__}: {_safe_str(exc)}", 500)


def _bundle(obj, include=None, exclude=None):
    """{"data": {mime: value}, "error": str|None} for one object."""
    data, errors = {}, []

    def want(mime):
        return (include is None or mime in include) and (exclude is None or mime not in exclude)

    def put(mime, value, where):
        try:
            value = _format_value(mime, value, where)
            size = _value_size(value)
        except Exception as exc:
            errors.append(f"{where}: {_describe(exc)}")
            return
        if size > _max_results_bytes:
            errors.append(f"{where}: {mime} is {size} bytes, over the run's output cap ({_max_results_bytes} bytes)")
            return
        data[mime] = value

    # A class is not displayed through its instances' methods (IPython skips them too).
    methods = not isinstance(obj, type)
    if methods:
        try:
            method = getattr(obj, "_repr_mimebundle_", None)
        except Exception:
            method = None
        if callable(method):
            try:
                got = method(include=include, exclude=exclude)
                if isinstance(got, tuple) and len(got) == 2:
                    got = got[0]
                if got is not None and not isinstance(got, dict):
                    raise TypeError(f"returned {type(got).__name__}, expected dict")
                for mime, value in list((got or {}).items())[:_MAX_MIMES]:
                    if not isinstance(mime, str) or _MIME_TYPE.fullmatch(mime) is None:
                        errors.append(f"_repr_mimebundle_: {_safe_repr(mime)[:100]} is not a MIME type")
                    elif want(mime):
                        put(mime, value, "_repr_mimebundle_")
            except Exception as exc:
                errors.append(f"_repr_mimebundle_: {_describe(exc)}")
        for mime, name in _REPR_METHODS:
            if mime in data or not want(mime):
                continue
            try:
                method = getattr(obj, name, None)
            except Exception:
                method = None
            if not callable(method):
                continue
            try:
                value = method()
            except Exception as exc:
                errors.append(f"{name}: {_describe(exc)}")
                continue
            if value is not None:  # None: the object declines this format (IPython)
                put(mime, value, name)
    if "text/plain" not in data and want("text/plain"):
        data["text/plain"] = _safe_repr(obj)
    return {"data": data, "error": "; ".join(errors)[:2000] or None}


def _collect(bundle, main):
    global _results_bytes, _results_over
    if _results_over:
        raise _OutputLimit
    bundle["isMainResult"] = main
    size = sum(_value_size(v) + len(k) + 8 for k, v in bundle["data"].items()) + len(bundle["error"] or "") + 40
    if _results_bytes + size > _max_results_bytes:
        _results_over = size
        raise _OutputLimit
    _results_bytes += size
    _results.append(bundle)


def display(*objs, include=None, exclude=None):
    """Shows each object as a rich result (like IPython's display()): every format it offers."""
    for obj in objs:
        _collect(_bundle(obj, include, exclude), False)


def _display_main(value):
    """The last expression's bundle, marked as the main result, when it offers more than text."""
    bundle = _bundle(value)
    if bundle["error"] or any(mime != "text/plain" for mime in bundle["data"]):
        _collect(bundle, True)


# matplotlib (when the guest imports it): the Agg backend, and plt.show() and figures still open at
# the end of the run become image/png results, like IPython's inline backend. Not installable in
# every environment: test_runner.py checks the hook against a stand-in matplotlib package.
def _show_figures(*args, **kwargs):
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is None:
        return
    import io
    for number in list(pyplot.get_fignums()):
        figure = pyplot.figure(number)
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", bbox_inches="tight")
        _collect({"data": {"image/png": _format_value("image/png", buffer.getvalue(), "savefig"), "text/plain": _safe_repr(figure)}, "error": None}, False)
        pyplot.close(figure)


class _PatchingLoader:
    def __init__(self, loader, name):
        self._loader = loader
        self._name = name

    def __getattr__(self, attr):
        return getattr(self._loader, attr)

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        if self._name == "matplotlib":
            module.use("Agg")  # before pyplot chooses a backend (Pyodide's default wants the DOM)
        else:
            module.show = _show_figures


class _MatplotlibHook:
    """A meta-path finder that patches matplotlib and matplotlib.pyplot as they are imported."""

    NAMES = ("matplotlib", "matplotlib.pyplot")

    def find_spec(self, name, path=None, target=None):
        if name not in self.NAMES:
            return None
        for finder in sys.meta_path:
            if isinstance(finder, (_MatplotlibHook, _BlockedImports)) or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _PatchingLoader(spec.loader, name)
        return spec


def _start_results(max_bytes):
    global _results, _results_bytes, _results_over, _max_results_bytes
    _results, _results_bytes, _results_over, _max_results_bytes = [], 0, 0, max_bytes
    if not any(type(finder).__name__ == "_MatplotlibHook" for finder in sys.meta_path):
        # After the finder that blocks the JS bridges: that one stays first (test/security.test.ts).
        blocked = [i for i, finder in enumerate(sys.meta_path) if isinstance(finder, _BlockedImports)]
        sys.meta_path.insert(blocked[0] + 1 if blocked else 0, _MatplotlibHook())
    builtins.display = display

_session_main = None
_host_call = None


def configure(repr_max_chars, message_max_chars, traceback_max_chars):
    """Called once by the worker before the snapshot: the bounds of src/core/limits.ts."""
    global _REPR_MAX_CHARS, _MESSAGE_MAX_CHARS, _TRACEBACK_MAX_CHARS
    _REPR_MAX_CHARS = repr_max_chars
    _MESSAGE_MAX_CHARS = message_max_chars
    _TRACEBACK_MAX_CHARS = traceback_max_chars


def set_sleep(function):
    """Called once after the snapshot is restored with the worker's sleep (milliseconds -> whether
    the host interrupted it); installs what the sandbox's Python needs before any guest code."""
    _compat.install(function)


def _awaited(code, value):
    """A top-level `await` compiles to a coroutine: run it to its end on the current event loop."""
    if code.co_flags & _CO_COROUTINE:
        return _compat.current_event_loop().run_until_complete(value)
    return value


def set_host_call(function):
    """Called once after the snapshot is restored with the worker's synchronous host-call bridge."""
    global _host_call
    _host_call = function


def _loads(text, empty):
    # Most runs pass no argv, env or tools: skip the decoder for those.
    return empty() if text == "[]" or text == "{}" else _json_loads(text)


_env_for = {}  # env JSON -> os.environ's internal mapping for it


def _set_environ(env_json):
    """Makes os.environ exactly the run's environment (guest code may have changed it)."""
    data = _env_for.get(env_json)
    if data is None:
        os.environ.clear()
        os.environ.update(_loads(env_json, dict))
        if len(_env_for) < 16:
            _env_for[env_json] = dict(os.environ._data)
        return
    if os.environ._data != data:
        os.environ.clear()
        os.environ.update({os.environ.decodekey(k): os.environ.decodevalue(v) for k, v in data.items()})


def run(code, filename, argv_json, env_json, max_value_bytes, keep_state=False, tools_json="[]"):
    """Runs one program. Lists and dicts arrive as JSON text: no JS proxies outlive the call."""
    global _session_main
    import wasmbox
    object.__setattr__(wasmbox.tools, "_names", frozenset(_loads(tools_json, list)))
    if not keep_state or _session_main is None:
        _reseed_random()
        _compat.fresh_event_loop()
    argv0 = "-c" if filename == "<string>" else filename
    sys.argv = [argv0, *_loads(argv_json, list)]
    _set_environ(env_json)
    os.chdir("/sandbox")
    # Like CPython: sys.path[0] is the script's directory (the working directory for code).
    script_dir = "/sandbox" if filename == "<string>" else os.path.dirname("/sandbox/" + filename)
    if script_dir not in sys.path:
        sys.path.insert(0, script_dir)
    if keep_state and _session_main is not None:
        main = _session_main  # a session: globals carry over from the previous call
    else:
        main = types.ModuleType("__main__")
        main.__dict__["__builtins__"] = builtins
        if keep_state:
            _session_main = main
    if filename != "<string>":
        main.__file__ = "/sandbox/" + filename
    sys.modules["__main__"] = main
    scope = main.__dict__
    linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
    _start_results(max_value_bytes)

    outcome = {"status": "ok", "exitCode": 0, "value": None, "valueLossless": None, "valueRepr": None, "error": None}
    try:
        try:
            tree = ast.parse(code, filename)
            last = None
            if tree.body and isinstance(tree.body[-1], ast.Expr):
                last = ast.Expression(tree.body.pop().value)
            body = compile(tree, filename, "exec", flags=_TOP_LEVEL_AWAIT)
            _awaited(body, eval(body, scope))
            if last is not None:
                expression = compile(last, filename, "eval", flags=_TOP_LEVEL_AWAIT)
                value = _awaited(expression, eval(expression, scope))
                if value is not None:
                    outcome["valueRepr"] = _safe_repr(value)
                    outcome["value"] = _json_value(value, max_value_bytes)
                    outcome["valueLossless"] = _lossless_value(value, max_value_bytes)
                    _display_main(value)
            if "matplotlib.pyplot" in sys.modules:
                _show_figures()
        except _OutputLimit:
            pass  # the host ends the run as output_limit (resultsOverLimit below)
        except _compat._Aborted:
            outcome["status"] = "error"
            outcome["exitCode"] = 134  # 128 + SIGABRT, what a shell sees of an aborted process
            outcome["error"] = {"type": "Aborted", "message": "os.abort() ended the program (SIGABRT)", "traceback": ""}
        except SystemExit as exc:
            code_ = _exit_code(exc)
            outcome["exitCode"] = code_
            if code_ != 0:
                outcome["status"] = "error"
                # sys.exit("msg") keeps its message; a numeric exit says its (shell-visible) code.
                message = str(code_) if exc.code is None or isinstance(exc.code, int) else _safe_str(exc.code)
                outcome["error"] = {"type": "SystemExit", "message": message, "traceback": ""}
        except BaseException as exc:
            tb_text = _user_traceback(exc, filename)
            outcome["status"] = "memory_limit" if isinstance(exc, MemoryError) else "error"
            outcome["exitCode"] = 1
            outcome["error"] = {
                "type": type(exc).__name__,
                "message": _cut(_safe_str(exc), _MESSAGE_MAX_CHARS),
                "traceback": _cut_start(tb_text, _TRACEBACK_MAX_CHARS),
            }
            try:
                sys.stderr.write(tb_text)
            except BaseException:
                pass
        finally:
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()
                except BaseException:
                    pass
    except BaseException as exc:  # e.g. a second KeyboardInterrupt while reporting the first
        outcome["status"] = "error"
        outcome["exitCode"] = 1
        outcome["error"] = {"type": type(exc).__name__, "message": _cut(_safe_str(exc), _MESSAGE_MAX_CHARS), "traceback": ""}
    outcome["results"] = _results
    if _results_over:
        outcome["resultsOverLimit"] = _results_bytes + _results_over
    try:
        return _json_dumps(outcome)
    except BaseException:  # a guest that changed a collected value after the fact
        outcome["results"] = []
        return _json_dumps(outcome)
