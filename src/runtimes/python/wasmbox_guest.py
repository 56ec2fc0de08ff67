"""wasmbox: call the host functions registered for this run or session.

    from wasmbox import tools
    tools.search(q="x")    # keyword arguments only; JSON values in, JSON values out

    from wasmbox import display
    display(obj)           # a rich result: every format obj offers (_repr_png_, _repr_html_, ...)
"""
import json as _json

__all__ = ["tools", "ToolError", "display"]


class ToolError(Exception):
    """A host function failed; the message is the one the host gave."""


class _Tools:
    __slots__ = ("_names",)

    def __init__(self):
        object.__setattr__(self, "_names", frozenset())

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        if name not in self._names:
            known = ", ".join(sorted(self._names)) or "none"
            raise AttributeError(f"no host function named {name!r} is registered (registered: {known})")

        def call(*args, **kwargs):
            if args:
                raise TypeError(f"host function {name}() takes keyword arguments only")
            try:
                payload = _json.dumps(kwargs, allow_nan=False)
            except (TypeError, ValueError) as exc:
                raise TypeError(f"arguments to {name}() must be JSON-serialisable: {exc}") from None
            import _wasmbox_runner
            reply = _json.loads(_wasmbox_runner._host_call(name, payload))
            if reply.get("interrupted"):
                raise KeyboardInterrupt
            if not reply["ok"]:
                raise ToolError(reply["error"])
            return reply.get("value")

        call.__name__ = call.__qualname__ = name
        return call

    def __setattr__(self, name, value):
        raise AttributeError("tools is read-only")

    def __dir__(self):
        return sorted(self._names)

    def __repr__(self):
        return f"<wasmbox tools: {', '.join(sorted(self._names)) or 'none'}>"


tools = _Tools()


def display(*objs, include=None, exclude=None):
    """Shows each object as a rich result, like IPython's display(): a bundle of every format it
    offers through Jupyter's display protocol (_repr_mimebundle_, _repr_png_, _repr_svg_,
    _repr_html_, ...) and text/plain. The run's `results` carry them in the order displayed."""
    import _wasmbox_runner
    _wasmbox_runner.display(*objs, include=include, exclude=exclude)
