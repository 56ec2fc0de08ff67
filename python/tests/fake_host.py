#!/usr/bin/env python3
"""A stand-in for `deno run … serve --stdio` that speaks the session ops of the wire contract
(session.open with restore, session.save, session.fork, session.run with one host-function call,
session.close), so the client's side of them is tested without Deno. Started by
test_session_save.py as the Sandbox's "deno"; it logs its argv and every request line to
$FAKE_HOST_LOG (one JSON object a line).

Blobs it saves are b"BLOB|" + the session's language; a restore of anything else answers
INVALID_SESSION_BLOB. A run whose code is "call NAME" calls host function NAME with {"x": 21} and
answers the call's result as the run's value; any other run answers {"session", "language"}.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import sys

log = open(os.environ["FAKE_HOST_LOG"], "a", buffering=1)
log.write(json.dumps({"argv": sys.argv[1:]}) + "\n")
ids = itertools.count(1)
sessions: dict[str, str] = {}  # id -> language
calls: dict[int, object] = {}  # callId -> the run's id


def reply(message: dict) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def error(request_id: object, code: str, message: str) -> None:
    reply({"id": request_id, "error": {"code": code, "message": message}})


def new_session(language: str) -> str:
    session_id = f"s{next(ids)}"
    sessions[session_id] = language
    return session_id


def handle(request: dict) -> None:
    rid, op = request.get("id"), request.get("op")
    if "callId" in request:  # a host function's answer
        run_id = calls.pop(request["callId"])
        reply({"id": run_id, "status": "ok", "value": request.get("result", {"error": request.get("error")})})
        return
    if op == "session.open":
        language = request.get("language", "python")
        if "restore" in request:
            blob = base64.b64decode(request["restore"])
            if not blob.startswith(b"BLOB|"):
                return error(rid, "INVALID_SESSION_BLOB", "not a usable saved session: it does not start with the magic")
            language = blob[5:].decode()
        return reply({"id": rid, "sessionId": new_session(language)})
    session_id = request.get("sessionId")
    if op is not None and op.startswith("session.") and session_id not in sessions:
        return error(rid, "SESSION_NOT_FOUND", f"no session {session_id}")
    if op == "session.save":
        if sessions[session_id] != "python":
            return error(rid, "NOT_IMPLEMENTED", f"{sessions[session_id]} sessions cannot be saved (Python only)")
        blob = b"BLOB|" + sessions[session_id].encode()
        return reply({"id": rid, "encoding": "base64", "blob": base64.b64encode(blob).decode(), "bytes": len(blob)})
    if op == "session.fork":
        count = request.get("count", 1)
        return reply({"id": rid, "sessionIds": [new_session(sessions[session_id]) for _ in range(count)]})
    if op == "session.run":
        code = request.get("code", "")
        if code.startswith("call "):
            call_id = next(ids)
            calls[call_id] = rid
            return reply({"id": rid, "event": "call", "callId": call_id, "name": code[5:], "args": {"x": 21}})
        return reply({"id": rid, "status": "ok", "value": {"session": session_id, "language": request.get("language")}})
    if op == "session.close":
        sessions.pop(session_id, None)
        return reply({"id": rid, "closed": True})
    if op == "cancel":
        return None
    return error(rid, "UNKNOWN_OP", f"unknown op {op!r}")


for line in sys.stdin:
    if not line.strip():
        continue
    request = json.loads(line)
    if request.get("shutdown"):
        break
    log.write(json.dumps(request) + "\n")
    handle(request)
