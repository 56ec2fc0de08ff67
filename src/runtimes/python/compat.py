"""_wasmbox_compat: the parts of an ordinary Python process that Pyodide in a zero-permission
worker lacks, made to behave as a script expects: sleeping, asyncio's event loop, thread fan-out.

Executed inside Pyodide before the memory snapshot (src/runtimes/python/runner-source.ts);
`install()` runs once after the snapshot is restored, before any guest code. Plain CPython can
import it too: src/runtimes/python/test_runner.py tests it there.

What it replaces, and why:
- time.sleep: Emscripten's busy-waits (a core at 100% for the whole sleep) and cannot be
  interrupted, so a sleeping run ran past its timeout until the host killed the executor. Here a
  sleep waits on the worker's interrupt cell (Atomics.wait): no CPU, and the host's interrupt ends
  it with KeyboardInterrupt like any other Python code.
- asyncio's event loop: Pyodide's WebLoop schedules through JavaScript (the `pyodide_js` module,
  refused in the sandbox) and cannot block in run_until_complete. The loop here is asyncio's own
  BaseEventLoop with no file descriptors: waiting for the next timer is a sleep as above.
- threads: WebAssembly here has one thread. ThreadPoolExecutor runs each task when it is submitted
  (map, submit, as_completed and run_in_executor give their results, one task after another);
  starting any other thread raises a RuntimeError saying what to do instead.
"""
#: What a guest that starts a thread is told: one line a model can act on.
THREAD_MESSAGE = (
    "threads cannot start in the wasmbox sandbox (one WebAssembly thread): call the function "
    "directly, or submit it to concurrent.futures.ThreadPoolExecutor, which runs each task in turn"
)
#: What a loop waiting for I/O that can never come says, instead of waiting until the timeout.
DEADLOCK_MESSAGE = (
    "the asyncio event loop has nothing to run and nothing scheduled: it would wait forever for I/O, "
    "which the wasmbox sandbox has none of (is something awaiting a future nobody sets?)"
)

_sleep_js = None
_real_sleep = None


def sleep(secs, /):
    """time.sleep: waits without using CPU; the host's interrupt raises KeyboardInterrupt."""
    if isinstance(secs, float):
        if secs != secs:
            raise ValueError("Invalid value NaN (not a number)")
    else:
        import operator
        secs = operator.index(secs)
    if secs < 0:
        raise ValueError("sleep length must be non-negative")
    if _sleep_js is None:
        return _real_sleep(secs)
    if _sleep_js(secs * 1000.0):
        raise KeyboardInterrupt


def _install_sleep(sleep_js):
    global _sleep_js, _real_sleep
    import time
    if _real_sleep is None:
        _real_sleep = time.sleep
    _sleep_js = sleep_js
    time.sleep = sleep


class _SleepSelector:
    """What BaseEventLoop waits on between callbacks. No file descriptor exists to wait for, so
    waiting until the next timer is a sleep, and waiting with nothing scheduled is a deadlock."""

    def select(self, timeout=None):
        if timeout is None:
            raise RuntimeError(DEADLOCK_MESSAGE)
        if timeout > 0:
            sleep(timeout)
        return []

    def close(self):
        pass


def _event_loop_class():
    import asyncio.base_events

    class SandboxEventLoop(asyncio.base_events.BaseEventLoop):
        """asyncio's own loop (timers, tasks, futures, executors) with no sockets, pipes or signals."""

        def __init__(self):
            super().__init__()
            self._selector = _SleepSelector()

        def _process_events(self, event_list):
            pass

        def _write_to_self(self):
            pass  # call_soon_threadsafe: there is no other thread to wake this one from

    return SandboxEventLoop


#: The loop class, made by install() (asyncio is imported then, not when this module loads).
EventLoop = None


def _install_asyncio():
    global EventLoop
    import asyncio
    import asyncio.events as events
    EventLoop = _event_loop_class()

    base = getattr(events, "_BaseDefaultEventLoopPolicy", None) or events.BaseDefaultEventLoopPolicy

    class SandboxPolicy(base):
        _loop_factory = EventLoop

        def get_event_loop(self):
            # Python 3.14 raises here once asyncio.run() has cleared the current loop; scripts
            # written for earlier versions (most of what models write) call it and expect a loop.
            if self._local._loop is None:
                self.set_event_loop(self.new_event_loop())
            return self._local._loop

    # The policy API is deprecated in 3.14 (kept until 3.16); its private setter does not warn.
    setter = getattr(events, "_set_event_loop_policy", None) or asyncio.set_event_loop_policy
    setter(SandboxPolicy())
    # Pyodide (pyodide/webloop.py, _initialize_event_loop) replaced asyncio.run with a wrapper that
    # asks JavaScript (pyodide_js) whether to run on its WebLoop: put asyncio's own back.
    import asyncio.runners
    asyncio.run = asyncio.runners.run
    # Pyodide marks its WebLoop as running for good (so browser code can schedule on it); a script
    # starts with no loop running.
    events._set_running_loop(None)


def fresh_event_loop():
    """Each run starts with a new current loop, so asyncio.get_event_loop() works as scripts expect."""
    import asyncio
    asyncio.set_event_loop(EventLoop())


def current_event_loop():
    """The loop top-level `await` runs on: the current one (kept by a session between calls), or a new one."""
    import asyncio.events as events
    policy = (getattr(events, "_get_event_loop_policy", None) or events.get_event_loop_policy)()
    loop = policy._local._loop
    if loop is None or loop.is_closed():
        loop = EventLoop()
        policy.set_event_loop(loop)
    return loop


def _refuse_thread(*args, **kwargs):
    raise RuntimeError(THREAD_MESSAGE)


def _install_threads():
    import _thread
    import threading
    import concurrent.futures as futures
    import concurrent.futures.thread as thread_pool

    for module in (_thread, threading):
        for name in ("start_new_thread", "start_new", "start_joinable_thread", "_start_new_thread", "_start_joinable_thread"):
            if hasattr(module, name):
                setattr(module, name, _refuse_thread)

    def submit(self, fn, /, *args, **kwargs):
        """Runs fn now and returns its finished future (the tasks of a pool run one after another)."""
        with self._shutdown_lock:
            if self._broken:
                raise thread_pool.BrokenThreadPool(self._broken)
            if self._shutdown:
                raise RuntimeError("cannot schedule new futures after shutdown")
        future = futures.Future()
        if not future.set_running_or_notify_cancel():
            return future
        try:
            result = fn(*args, **kwargs)
        except KeyboardInterrupt:
            raise  # the host's interrupt (timeout) ends the run, as in the main thread
        except BaseException as exc:
            future.set_exception(exc)
        else:
            future.set_result(result)
        return future

    submit.__qualname__ = "ThreadPoolExecutor.submit"
    thread_pool.ThreadPoolExecutor.submit = submit


def install(sleep_js):
    """Once, after the snapshot is restored and before any guest code."""
    _install_sleep(sleep_js)
    _install_asyncio()
    _install_threads()

