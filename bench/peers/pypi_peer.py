"""Runs one PyPI sandbox peer (mcp-run-python or langchain-sandbox) N times on the same code.

    python pypi_peer.py PEER N CODE  ->  one JSON line: {"samples": [ms...], "output": ...} or {"error": ...}

The first run also starts the peer (Deno fetching its packages, Pyodide loading); its time is
reported apart as "setup_ms" and not counted in the samples.
"""

import asyncio
import json
import sys
import time


async def mcp_run_python(n, code):
    from mcp_run_python import code_sandbox

    started = time.perf_counter()
    async with code_sandbox(allow_networking=False) as sandbox:
        first = await sandbox.eval(code)
        setup_ms = (time.perf_counter() - started) * 1000
        if first.get("status") != "success":
            return {"error": f"run failed: {json.dumps(first)[:300]}"}
        samples = []
        output = first
        for _ in range(n):
            t0 = time.perf_counter()
            output = await sandbox.eval(code)
            samples.append((time.perf_counter() - t0) * 1000)
        return {"samples": samples, "setup_ms": setup_ms, "output": output.get("output")}


async def langchain_sandbox(n, code):
    from langchain_sandbox import PyodideSandbox

    sandbox = PyodideSandbox(allow_net=False)
    started = time.perf_counter()
    first = await sandbox.execute(code)
    setup_ms = (time.perf_counter() - started) * 1000
    if first.status != "success":
        return {"error": f"run failed: {(first.stderr or '')[-400:]}"}
    samples = []
    output = first
    for _ in range(n):
        t0 = time.perf_counter()
        output = await sandbox.execute(code)
        samples.append((time.perf_counter() - t0) * 1000)
    return {"samples": samples, "setup_ms": setup_ms, "output": output.stdout}


PEERS = {"mcp-run-python": mcp_run_python, "langchain-sandbox": langchain_sandbox}


def main():
    peer, n, code = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    try:
        result = asyncio.run(PEERS[peer](n, code))
    except BaseException as error:  # report, never hang the bench
        while isinstance(error, BaseExceptionGroup) and error.exceptions:
            error = error.exceptions[0]  # anyio wraps the real failure in task groups
        text = str(error)
        result = {"error": f"{type(error).__name__}: {text[-600:]}"}
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
