"""Child processes belong to the command that starts them.

Every external tool delayhw runs (simulators through cocotb, the FPGA tools) is started by
:func:`popen` or :func:`run`: in its own process group (a new session, so a terminal's
Ctrl-C reaches delayhw, which then decides), registered while it lives, and stopped with
its whole group (SIGTERM, then SIGKILL after a grace period) when the caller leaves by an
exception. :func:`stop_all` stops every registered child: the CLI calls it on every exit
path (``delayhw.cli.common.run_command``) and it runs at interpreter exit, so SIGINT or
SIGTERM to delayhw leaves no simulator or synthesis tool running.

Each child's ``TMPDIR`` is a folder of its own (:func:`temp_dir`), removed once the child is
reaped or stopped: a tool killed mid-way leaves its temporary files there (Icarus' driver
does, on SIGTERM), not in the user's temporary folder.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

__all__ = ["popen", "run", "stop", "stop_all", "live", "temp_dir", "own_temp_dir",
           "release_temp_dir"]

_LIVE: set[subprocess.Popen] = set()
#: Each live child's own TMPDIR (:func:`popen`), removed when it is forgotten.
_SCRATCH: dict[subprocess.Popen, Path] = {}
#: Temporary folders the children write into: removed by :func:`stop_all` once they are
#: stopped (a simulator stopped by a signal can still write its results file on the way out).
_TEMP_DIRS: set[str] = set()
_LOCK = threading.Lock()
GRACE_S = 2.0


def popen(args, **kwargs) -> subprocess.Popen:
    """``subprocess.Popen`` in a new process group with a ``TMPDIR`` of its own (in ``env``,
    default this process' environment), registered until :func:`stop` or it is reaped by
    :func:`run`; its TMPDIR goes then (or with :func:`stop_all`)."""
    scratch = temp_dir("delayhw-child-")
    kwargs["env"] = dict(os.environ if kwargs.get("env") is None else kwargs["env"],
                         TMPDIR=str(scratch))
    kwargs["start_new_session"] = True
    try:
        proc = subprocess.Popen(args, **kwargs)
    except BaseException:
        _remove_temp_dir(scratch)
        raise
    with _LOCK:
        _LIVE.add(proc)
        _SCRATCH[proc] = scratch
    return proc


def _forget(proc: subprocess.Popen) -> None:
    with _LOCK:
        _LIVE.discard(proc)
        scratch = _SCRATCH.pop(proc, None)
    if scratch is not None:
        _remove_temp_dir(scratch)


def stop(proc: subprocess.Popen, grace: float = GRACE_S) -> None:
    """Stop ``proc`` and everything in its process group: SIGTERM, then SIGKILL."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
        deadline = time.monotonic() + (grace if sig == signal.SIGTERM else 5.0)
        while time.monotonic() < deadline:
            if proc.poll() is not None and not _group_alive(proc.pid):
                break
            time.sleep(0.02)
        else:
            continue
        break
    _forget(proc)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def run(args, **kwargs) -> int:
    """Run ``args`` to completion (:func:`popen` keywords); return its exit code. Leaving by
    any exception (KeyboardInterrupt, SIGTERM raised as an exception) stops its group."""
    proc = popen(args, **kwargs)
    try:
        code = proc.wait()
    except BaseException:
        stop(proc)
        raise
    if _group_alive(proc.pid):     # a tool that left something behind in its group
        stop(proc)
    _forget(proc)
    return code


def live() -> list[subprocess.Popen]:
    """The registered children not yet stopped or reaped."""
    with _LOCK:
        return list(_LIVE)


def stop_all() -> None:
    """Stop every registered child and its group, then remove the registered temporary
    folders (:func:`own_temp_dir`)."""
    for proc in live():
        stop(proc)
    with _LOCK:
        folders = list(_TEMP_DIRS)
    for folder in folders:        # each stays registered until it is gone, so a second
        _remove_temp_dir(folder)  # signal mid-way leaves it to the next call


def _remove_temp_dir(folder) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    release_temp_dir(folder)


def temp_dir(prefix: str) -> Path:
    """A new temporary folder, registered (:func:`own_temp_dir`) before SIGINT or SIGTERM
    can interrupt: there is no moment at which it exists unregistered."""
    masked = {signal.SIGINT, signal.SIGTERM}
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, masked) if in_main else None
    try:
        path = Path(tempfile.mkdtemp(prefix=prefix))
        own_temp_dir(path)
    finally:
        if previous is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)
    return path


def own_temp_dir(path) -> None:
    """Register a temporary folder children write into, removed by :func:`stop_all` (on
    every exit path of a command) unless :func:`release_temp_dir` is called first."""
    with _LOCK:
        _TEMP_DIRS.add(str(path))


def release_temp_dir(path) -> None:
    """The caller removed ``path`` itself, or keeps it."""
    with _LOCK:
        _TEMP_DIRS.discard(str(path))


atexit.register(stop_all)


def _after_fork() -> None:
    """A forked process (a local regress worker) does not own its parent's children."""
    global _LOCK
    _LOCK = threading.Lock()
    _LIVE.clear()
    _SCRATCH.clear()
    _TEMP_DIRS.clear()


os.register_at_fork(after_in_child=_after_fork)
