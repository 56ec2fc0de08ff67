"""_wasmbox_compat: the parts of an ordinary Python process that Pyodide in a zero-permission
worker lacks, made to behave as a script expects: sleeping, asyncio's event loop, thread fan-out,
and the system's answers.

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
- the system a program asks about (users, host name, CPUs, load, resource limits, listening
  sockets, the terminal, os.abort, pbkdf2): answers of a small container run as root, or the
  Python exception a program can handle, where Emscripten crashed the executor, blocked it, or had
  nothing (see _install_system and docs/python.md).
"""
import sys

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

        async def shutdown_default_executor(self, timeout=None):
            # asyncio.run() calls this at the end; BaseEventLoop's starts a thread to wait for the
            # executor. Its tasks have all run already (submit runs them): shut it down here.
            self._executor_shutdown_called = True
            if self._default_executor is not None:
                self._default_executor.shutdown(wait=True)
                self._default_executor = None

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


# --- The system a program asks about: a small, anonymous Linux container ---------------------
# Emscripten answers most of these inside wasm; os.getuid() reached Deno's process.getuid() (the
# denied sys permission: an executor crash, fixed in the worker, which answers 0), and pwd, grp and
# resource do not exist in this build. Files are owned by uid 0 in Emscripten's file system, and
# getgid() says 0: the program runs as root, as in a default container.
UID = 0
GID = 0
USER = "root"
HOME = "/root"
HOSTNAME = "sandbox"
LISTEN_MESSAGE = "the wasmbox sandbox has no network: sockets cannot listen or connect"


def _structseq(name, fields, module):
    """A read-only tuple with named fields, like CPython's struct sequences (pwd.struct_passwd, ...)."""
    import collections
    base = collections.namedtuple(name, fields)
    return type(name, (base,), {"__slots__": (), "__module__": module, "n_sequence_fields": len(fields), "n_fields": len(fields)})


def _module(name, doc, **attributes):
    import types
    module = types.ModuleType(name, doc)
    module.__dict__.update(attributes)
    for value in attributes.values():
        if callable(value) and getattr(value, "__module__", None) == __name__:
            value.__module__ = name
    sys.modules[name] = module
    return module


def _install_pwd_grp():
    struct_passwd = _structseq("struct_passwd", ["pw_name", "pw_passwd", "pw_uid", "pw_gid", "pw_gecos", "pw_dir", "pw_shell"], "pwd")
    struct_group = _structseq("struct_group", ["gr_name", "gr_passwd", "gr_gid", "gr_mem"], "grp")
    users = [struct_passwd(USER, "x", UID, GID, USER, HOME, "/bin/sh")]
    groups = [struct_group(USER, "x", GID, [])]

    def lookup(name, entries, field, what):
        """A database lookup as CPython's: the entry whose `field` is the key, else KeyError."""
        def find(key):
            for entry in entries:
                if getattr(entry, field) == key:
                    return entry
            raise KeyError(f"{name}(): {what} not found: {key!r}")
        find.__name__ = find.__qualname__ = name
        return find

    getpwuid = lookup("getpwuid", users, "pw_uid", "uid")
    getpwnam = lookup("getpwnam", users, "pw_name", "name")
    getgrgid = lookup("getgrgid", groups, "gr_gid", "gid")
    getgrnam = lookup("getgrnam", groups, "gr_name", "name")

    _module("pwd", "The password database: the sandbox's one user.", struct_passwd=struct_passwd, getpwuid=getpwuid, getpwnam=getpwnam, getpwall=lambda: list(users))
    _module("grp", "The group database: the sandbox's one group.", struct_group=struct_group, getgrgid=getgrgid, getgrnam=getgrnam, getgrall=lambda: list(groups))


def _install_resource():
    import time
    struct_rusage = _structseq(
        "struct_rusage",
        ["ru_utime", "ru_stime", "ru_maxrss", "ru_ixrss", "ru_idrss", "ru_isrss", "ru_minflt", "ru_majflt", "ru_nswap",
         "ru_inblock", "ru_oublock", "ru_msgsnd", "ru_msgrcv", "ru_nsignals", "ru_nvcsw", "ru_nivcsw"],
        "resource",
    )
    infinity = -1
    names = ["RLIMIT_CPU", "RLIMIT_FSIZE", "RLIMIT_DATA", "RLIMIT_STACK", "RLIMIT_CORE", "RLIMIT_RSS", "RLIMIT_NPROC", "RLIMIT_NOFILE", "RLIMIT_MEMLOCK", "RLIMIT_AS"]
    limits = {number: (infinity, infinity) for number in range(len(names))}
    limits[names.index("RLIMIT_NOFILE")] = (1024, 1048576)
    limits[names.index("RLIMIT_STACK")] = (8388608, infinity)

    def getrlimit(resource):
        if resource not in limits:
            raise ValueError("invalid resource specified")
        return limits[resource]

    def setrlimit(resource, limits_pair):
        # Kept as asked (within the hard limit); the sandbox's own limits are what end a run.
        soft, hard = limits_pair
        current_hard = getrlimit(resource)[1]
        if current_hard != infinity and (hard == infinity or hard > current_hard):
            raise ValueError("not allowed to raise maximum limit")
        limits[resource] = (soft, hard)

    def getrusage(who):
        if who not in (0, -1):
            raise ValueError("invalid who parameter")
        cpu = time.process_time() if who == 0 else 0.0
        return struct_rusage(cpu, 0.0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)

    _module(
        "resource", "Resource limits and usage (the sandbox's limits are the host's: these are informative).",
        struct_rusage=struct_rusage, error=OSError, RLIM_INFINITY=infinity, RUSAGE_SELF=0, RUSAGE_CHILDREN=-1,
        getrlimit=getrlimit, setrlimit=setrlimit, getrusage=getrusage, getpagesize=lambda: 65536,
        **{name: number for number, name in enumerate(names)},
    )


def _pbkdf2_hmac(hash_name, password, salt, iterations, dklen=None):
    """hashlib.pbkdf2_hmac (RFC 8018) on hmac: this build has no OpenSSL to provide it."""
    import hashlib
    import hmac
    if not isinstance(hash_name, str):
        raise TypeError(hash_name)
    password, salt = bytes(memoryview(password)), bytes(memoryview(salt))
    if iterations < 1:
        raise ValueError("iteration value must be greater than 0.")
    key = hmac.new(password, digestmod=lambda *a: hashlib.new(hash_name, *a))
    size = key.digest_size
    dklen = size if dklen is None else dklen
    if dklen < 1:
        raise ValueError("key length must be greater than 0.")
    blocks = []
    for index in range(1, -(-dklen // size) + 1):
        mac = key.copy()
        mac.update(salt + index.to_bytes(4, "big"))
        u = mac.digest()
        total = int.from_bytes(u, "big")
        for _ in range(iterations - 1):
            mac = key.copy()
            mac.update(u)
            u = mac.digest()
            total ^= int.from_bytes(u, "big")
        blocks.append(total.to_bytes(size, "big"))
    return b"".join(blocks)[:dklen]


class _Aborted(BaseException):
    """os.abort(): the program ends at once with SIGABRT's exit status (134), like a process would."""


def _abort():
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:
            pass
    raise _Aborted


def _install_system():
    import os
    import socket
    import threading
    import time
    import _thread

    for name, value in (("getuid", UID), ("geteuid", UID), ("getgid", GID), ("getegid", GID)):
        setattr(os, name, (lambda value: lambda: value)(value))
    os.getgroups = lambda: [GID]
    os.getresuid = lambda: (UID, UID, UID)
    os.getresgid = lambda: (GID, GID, GID)
    os.getloadavg = lambda: (0.0, 0.0, 0.0)
    os.sched_getaffinity = lambda pid: {0}
    real_uname = os.uname
    os.uname = lambda: type(real_uname())((*real_uname()[:1], HOSTNAME, *real_uname()[2:]))
    os.abort = _abort
    socket.gethostname = lambda: HOSTNAME
    threading.get_native_id = _thread.get_native_id = lambda: 1
    if not hasattr(time, "thread_time"):
        time.thread_time = time.process_time
        time.thread_time_ns = time.process_time_ns

    def listen(self, *args):
        # Emscripten's listen() loads a WebSocket server module with no error handling, which the
        # executor's read permissions turn into a crash.
        import errno
        raise OSError(errno.EACCES, LISTEN_MESSAGE)

    socket.socket.listen = listen
    _install_pwd_grp()
    _install_resource()
    import hashlib
    if not hasattr(hashlib, "pbkdf2_hmac"):
        hashlib.pbkdf2_hmac = _pbkdf2_hmac
        hashlib.__all__ = (*hashlib.__all__, "pbkdf2_hmac")
    if sys.platform != "emscripten":
        return  # plain CPython (tests): leave the real file system alone
    os.makedirs(HOME, exist_ok=True)
    # No terminal, as in a container run without -t: opening /dev/tty fails, and getpass falls back
    # to stdin (Emscripten's TTY device would read the executor's own stdin).
    for device in ("/dev/tty", "/dev/tty1"):
        try:
            os.unlink(device)
        except OSError:
            pass


def install(sleep_js):
    """Once, after the snapshot is restored and before any guest code."""
    _install_sleep(sleep_js)
    _install_asyncio()
    _install_threads()
    _install_system()

