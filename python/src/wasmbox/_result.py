"""RunResult: what one run did, decoded from the wire (src/core/result.ts) into snake_case."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any, Literal, Mapping

from ._errors import RUN_FAILED_BY_STATUS, ProtocolError
from ._lossless import decode_lossless

__all__ = ["RunStatus", "RUN_STATUSES", "GuestError", "RichResult", "RunResult"]

RunStatus = Literal["ok", "error", "timeout", "memory_limit", "output_limit", "crash", "cancelled"]
RUN_STATUSES: tuple[str, ...] = ("ok", "error", "timeout", "memory_limit", "output_limit", "crash", "cancelled")


@dataclass(frozen=True)
class GuestError:
    """What went wrong in the guest, as data."""

    #: Exception class name, e.g. "ZeroDivisionError"; "Timeout", "MemoryLimit", "OutputLimit",
    #: "Crash" or "Cancelled" when the host ended the run.
    type: str
    message: str
    #: Python-style traceback pointing at the user's code ("" when the host ended the run).
    traceback: str


@dataclass(frozen=True)
class RichResult:
    """One rich result: an object the guest displayed (``display(obj)``), or the last expression's
    value when it offers more than text, with every format it offers through Jupyter's display
    protocol (like E2B's ``Result``). ``data`` maps MIME types to values as on the wire: images as
    base64 text, JSON formats as JSON data, the others as text; the properties decode them."""

    data: Mapping[str, Any]
    #: The run's last expression (E2B's ``is_main_result``); False for ``display()`` calls.
    is_main_result: bool = False
    #: What went wrong making some formats (a ``_repr_*_`` that raised, returned the wrong type or
    #: was over the output cap), else None.
    error: str | None = None

    def _text(self, mime: str) -> str | None:
        value = self.data.get(mime)
        return value if isinstance(value, str) else None

    def _bytes(self, mime: str) -> bytes | None:
        value = self._text(mime)
        return None if value is None else base64.b64decode(value)

    @property
    def text(self) -> str | None:
        """text/plain: the object's repr()."""
        return self._text("text/plain")

    @property
    def png(self) -> bytes | None:
        """image/png, decoded to bytes."""
        return self._bytes("image/png")

    @property
    def jpeg(self) -> bytes | None:
        """image/jpeg, decoded to bytes."""
        return self._bytes("image/jpeg")

    @property
    def svg(self) -> str | None:
        return self._text("image/svg+xml")

    @property
    def html(self) -> str | None:
        return self._text("text/html")

    @property
    def markdown(self) -> str | None:
        return self._text("text/markdown")

    @property
    def latex(self) -> str | None:
        return self._text("text/latex")

    @property
    def json(self) -> Any:
        """application/json as Python data (None when absent)."""
        return self.data.get("application/json")

    def formats(self) -> list[str]:
        """The MIME types this result carries, text/plain last."""
        return sorted(self.data, key=lambda mime: mime == "text/plain")

    @classmethod
    def from_wire(cls, raw: Mapping[str, Any]) -> "RichResult":
        data = raw["data"]
        if not isinstance(data, Mapping):
            raise ProtocolError("host sent a rich result whose data is not an object")
        error = raw.get("error")
        return cls(data=dict(data), is_main_result=bool(raw.get("isMainResult", False)), error=None if error is None else str(error))


@dataclass(frozen=True)
class RunResult:
    """The result of one run. Every guest outcome (exceptions, timeouts, limits) is a RunResult, never an exception."""

    status: RunStatus
    #: ``sys.exit(n)`` gives n; an uncaught exception gives 1; None when the run did not finish.
    exit_code: int | None
    #: UTF-8 (invalid bytes replaced); capped together with stderr at ``max_output_bytes``.
    stdout: str
    stderr: str
    #: The last expression, as the exact Python value where it converts (ints of any size, floats,
    #: tuples, dicts with any keys, bytes, sets, dates, decimals, ...; see docs/values.md), else
    #: its JSON form where that converts, else None (``value_repr`` still shows it).
    value: Any
    #: ``repr()`` of the last expression, or None when there is none (or it is None).
    value_repr: str | None
    error: GuestError | None
    #: Files the run created or changed under the sandbox directory: path ("a/b.txt") -> bytes.
    files: Mapping[str, bytes] = field(default_factory=dict)
    #: Wall-clock time from the request reaching an executor to the result, in milliseconds.
    duration_ms: float = 0.0
    #: CPU time the run used, in milliseconds (10 ms steps), read by the host; None where the host
    #: cannot read it (no /proc, e.g. macOS) or the run never started.
    cpu_time_ms: float | None = None
    #: The last expression as plain JSON data (what ``json.dumps`` would give; tuples as lists,
    #: dict keys as strings), or None where JSON cannot carry it (big ints, nan, objects).
    value_json: Any = None
    #: Rich results in the order displayed (``display(obj)``, the last expression's rich formats,
    #: matplotlib figures): ``result.results[0].png`` is the first image's bytes.
    results: tuple[RichResult, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def raise_for_status(self) -> "RunResult":
        """Returns self when ``ok``, else raises the RunFailedError subclass for the status."""
        if self.status == "ok":
            return self
        raise RUN_FAILED_BY_STATUS.get(self.status, RUN_FAILED_BY_STATUS["crash"])(self)

    def text(self, path: str, encoding: str = "utf-8") -> str:
        """An output file decoded as text."""
        return self.files[path].decode(encoding)

    @classmethod
    def from_wire(cls, reply: Mapping[str, Any]) -> "RunResult":
        """Decodes a wire RunResult (camelCase JSON object). Raises ProtocolError when it is malformed."""
        try:
            status = reply["status"]
            if status not in RUN_STATUSES:
                raise ProtocolError(f"host sent an unknown run status {status!r}")
            raw_error = reply.get("error")
            error = (
                None
                if raw_error is None
                else GuestError(type=str(raw_error["type"]), message=str(raw_error["message"]), traceback=str(raw_error["traceback"]))
            )
            files: dict[str, bytes] = {}
            for f in reply.get("files") or []:
                content = f["content"]
                if f["encoding"] == "base64":
                    files[f["path"]] = base64.b64decode(content)
                elif f["encoding"] == "utf8":
                    files[f["path"]] = content.encode("utf-8")
                else:
                    raise ProtocolError(f"host sent a file with unknown encoding {f['encoding']!r}")
            exit_code = reply.get("exitCode")
            lossless = reply.get("valueLossless")
            return cls(
                status=status,
                exit_code=None if exit_code is None else int(exit_code),
                stdout=str(reply.get("stdout", "")),
                stderr=str(reply.get("stderr", "")),
                value=decode_lossless(lossless) if lossless is not None else reply.get("value"),
                value_json=reply.get("value"),
                value_repr=reply.get("valueRepr"),
                error=error,
                files=files,
                results=tuple(RichResult.from_wire(r) for r in reply.get("results") or []),
                duration_ms=float(reply.get("durationMs", 0.0)),
                cpu_time_ms=None if reply.get("cpuTimeMs") is None else float(reply["cpuTimeMs"]),
            )
        except ProtocolError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as cause:
            raise ProtocolError(f"host sent a malformed run result: {cause!r}") from cause
