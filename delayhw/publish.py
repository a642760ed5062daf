"""Publishing outputs: the one way delayhw writes a file or directory a user asked for.

Rules (docs/design.md section 9):

- Every output is checked *before* any long work: its parent must be (or become) a
  writable directory, it must not be a directory (for a file), a FIFO or another special
  file, it must not be one of the command's inputs, and an existing one needs ``force``.
- It is written into a private staging directory next to it (same file system), under its
  own name, and published only when complete: a file with ``rename(RENAME_NOREPLACE)``
  (``renameat2`` through ctypes, falling back to ``link`` + ``unlink``), so a file that
  appeared meanwhile (another job with the same ``--out``) is never replaced unless
  ``force``; with ``force`` by an atomic ``rename``. A directory output is published as a
  whole (renamed into place) when the target is missing or empty; into an existing
  non-empty directory (``force`` only) each file is replaced atomically and other files are
  left alone.
- Publication blocks SIGINT/SIGTERM, so an interrupted command leaves either the old
  outputs or the complete new ones. Staging directories are removed when the
  :class:`Outputs` is discarded: on an exception, on garbage collection, at interpreter
  exit (the CLI turns SIGTERM into an exit for that).
"""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
import signal
import stat
import tempfile
import threading
import weakref
from pathlib import Path
from typing import Iterable

from .errors import DelayhwError

__all__ = ["Outputs", "copy_file", "check_output_file", "check_output_dir", "show_path",
           "STAGING_PREFIX"]

#: Name prefix of staging directories (``.delayhw-tmp-*``); never left behind on a clean exit.
STAGING_PREFIX = ".delayhw-tmp-"


def show_path(path: str | os.PathLike) -> str:
    """A path for a one-line message: control characters (a newline in a file name) are
    escaped as in Python string literals."""
    text = os.fspath(path)
    if isinstance(text, bytes):
        text = os.fsdecode(text)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a regular file" if stat.S_ISREG(mode) else "a special file"


def _stat(path: Path) -> os.stat_result | None:
    try:
        return os.stat(path)
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        return None          # reported by the parent check
    except PermissionError:
        raise DelayhwError(f"{show_path(path)}: permission denied (cannot reach it)") from None
    except OSError as exc:
        raise DelayhwError(f"{show_path(path)}: cannot inspect ({exc.strerror})") from None


def _writable_parent(path: Path, flag: str) -> Path:
    """The output's parent directory, checked: the nearest existing ancestor must be a
    writable directory (missing levels are created when staging)."""
    parent = path.parent
    probe = parent
    while True:
        st = _stat(probe)
        if st is not None:
            break
        if probe.parent == probe:
            break
        probe = probe.parent
    if st is not None and not stat.S_ISDIR(st.st_mode):
        raise DelayhwError(f"{show_path(path)}: {flag}: cannot write under "
                           f"{show_path(probe)}, which is {_kind(st.st_mode)}, not a directory")
    if st is not None and not os.access(probe, os.W_OK | os.X_OK):
        raise DelayhwError(f"{show_path(path)}: {flag}: permission denied: cannot write in "
                           f"directory {show_path(probe)}")
    return parent


def _same(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def _refuse_inputs(path: Path, inputs: Iterable[str | os.PathLike], flag: str) -> None:
    for source in inputs:
        if source is not None and _same(path, Path(source)):
            raise DelayhwError(f"{show_path(path)}: {flag}: is also an input of this command; "
                               f"write the output to another file")


def _not_empty(path: str | os.PathLike, flag: str) -> None:
    if not os.fspath(path):
        raise DelayhwError(f"{flag}: empty path, expected a file or directory name")


def _refuse_dangling(path: Path, flag: str) -> None:
    """A symbolic link to nothing: writing through it would publish elsewhere, replacing
    it would drop the link; refused up front (it would otherwise fail only at publication)."""
    if os.path.islink(path) and not os.path.exists(path):
        raise DelayhwError(f"{show_path(path)}: {flag}: is a symbolic link to a missing "
                           f"{show_path(os.readlink(path))}; delayhw will not write through "
                           f"it or replace it (remove the link or name another output)")


def check_output_file(path: str | os.PathLike, force: bool = False,
                      inputs: Iterable[str | os.PathLike] = (), flag: str = "--out") -> Path:
    """Check that ``path`` may become an output file (module rules); return it as a Path."""
    _not_empty(path, flag)
    if os.fspath(path).endswith(("/", os.sep)):
        raise DelayhwError(f"{show_path(path)}: {flag}: ends with '/', expected a file name")
    path = Path(path)
    _writable_parent(path, flag)
    _refuse_dangling(path, flag)
    st = _stat(path)
    if st is not None:
        if stat.S_ISDIR(st.st_mode):
            raise DelayhwError(f"{show_path(path)}: {flag}: is a directory, expected a file name")
        if not stat.S_ISREG(st.st_mode):
            raise DelayhwError(f"{show_path(path)}: {flag}: exists and is {_kind(st.st_mode)}, "
                               f"not a regular file; delayhw will not replace it")
        _refuse_inputs(path, inputs, flag)
        if not force:
            raise DelayhwError(f"{show_path(path)}: {flag}: file exists; pass --force to "
                               f"overwrite it")
    return path


def check_output_dir(path: str | os.PathLike, force: bool = False,
                     inputs: Iterable[str | os.PathLike] = (), flag: str = "-o") -> Path:
    """Check that ``path`` may become an output directory: missing, empty, or (``force``)
    non-empty; never a file, never an input."""
    _not_empty(path, flag)
    path = Path(path)
    _writable_parent(path, flag)
    _refuse_dangling(path, flag)
    st = _stat(path)
    if st is not None:
        if not stat.S_ISDIR(st.st_mode):
            raise DelayhwError(f"{show_path(path)}: {flag}: exists and is {_kind(st.st_mode)}, "
                               f"not a directory")
        _refuse_inputs(path, inputs, flag)
        if not os.access(path, os.W_OK | os.X_OK):
            raise DelayhwError(f"{show_path(path)}: {flag}: permission denied: cannot write in "
                               f"this directory")
        if any(path.iterdir()) and not force:
            raise DelayhwError(f"{show_path(path)}: {flag}: directory is not empty; pass --force "
                               f"to write into it")
    return path


# ----------------------------------------------------------------------------- renaming

_AT_FDCWD = -100
_RENAME_NOREPLACE = 1
try:
    _renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    _renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                           ctypes.c_uint]
except (AttributeError, OSError):      # not glibc >= 2.28: link + unlink below
    _renameat2 = None


def _rename_noreplace(src: Path, dst: Path) -> None:
    """Move ``src`` to ``dst``; FileExistsError if ``dst`` exists (never replaced)."""
    if _renameat2 is not None:
        if _renameat2(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst),
                      _RENAME_NOREPLACE) == 0:
            return
        code = ctypes.get_errno()
        if code not in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
            raise OSError(code, os.strerror(code), os.fspath(dst))
    if src.is_dir():
        os.mkdir(dst)              # FileExistsError if it appeared; else an empty placeholder
        os.rename(src, dst)        # replaces only that empty placeholder
    else:
        os.link(src, dst)          # FileExistsError if it appeared
        os.unlink(src)


# ----------------------------------------------------------------------------- staging

_PUBLISH_LOCK = threading.Lock()


def _remove_all(dirs: list[Path], created: list[Path]) -> None:
    """Remove the staging directories, then the parents made for them if left empty."""
    for d in dirs:
        shutil.rmtree(d, ignore_errors=True)
    for d in reversed(created):
        try:
            d.rmdir()
        except OSError:
            pass


class Outputs:
    """A command's outputs, staged and published together.

    ``file(path)`` / ``directory(path)`` check the output now (module rules) and return the
    staging path to write to; :meth:`publish` moves everything into place; leaving a
    ``with`` block by an exception, :meth:`discard`, garbage collection or interpreter exit
    removes what was staged. ``inputs`` are the command's input files (never overwritten).
    """

    def __init__(self, force: bool = False, inputs: Iterable[str | os.PathLike | None] = ()):
        self.force = force
        self.inputs = [Path(p) for p in inputs if p is not None]
        self._staging: dict[Path, Path] = {}       # parent dir -> its staging dir
        self._items: list[tuple[Path, Path, bool]] = []    # (target, staged, is_dir)
        self._dirs: list[Path] = []
        self._created: list[Path] = []          # missing parents made for staging
        self._cleanup = weakref.finalize(self, _remove_all, self._dirs, self._created)

    # -- staging
    def _stage_in(self, parent: Path) -> Path:
        key = Path(os.path.abspath(parent))
        if key not in self._staging:
            missing = [p for p in [key, *key.parents] if not p.exists()]
            try:
                for p in reversed(missing):
                    p.mkdir(exist_ok=True)
                    self._created.append(p)
                self._staging[key] = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=key))
            except OSError as exc:
                raise DelayhwError(f"{show_path(parent)}: cannot write here "
                                   f"({exc.strerror})") from None
            self._dirs.append(self._staging[key])
        return self._staging[key]

    def _claimed(self, path: Path) -> None:
        for target, _, _ in self._items:
            if _same(target, path) or os.path.abspath(target) == os.path.abspath(path):
                raise DelayhwError(f"{show_path(path)}: named twice as an output")

    def file(self, path: str | os.PathLike, flag: str = "--out") -> Path:
        """Check output file ``path``; return where to write it (same name, staged)."""
        path = check_output_file(path, self.force, self.inputs, flag)
        self._claimed(path)
        staged = self._stage_in(path.parent) / path.name
        self._items.append((path, staged, False))
        return staged

    def directory(self, path: str | os.PathLike, flag: str = "-o") -> Path:
        """Check output directory ``path``; return an empty staged directory to fill."""
        path = check_output_dir(path, self.force, self.inputs, flag)
        self._claimed(path)
        staged = self._stage_in(path.parent) / path.name
        staged.mkdir()
        self._items.append((path, staged, True))
        return staged

    def reserve(self, nbytes: int, what: str = "the outputs") -> None:
        """Refuse (DelayhwError) before the long work when the file system of the staged
        outputs has less than ``nbytes`` (an estimate of what will be written) free."""
        for parent, staging in self._staging.items():
            check_free_space(staging, nbytes, what)

    # -- publishing
    def publish(self) -> list[Path]:
        """Move every staged output into place (SIGINT/SIGTERM held off meanwhile); return
        the targets. Raises DelayhwError (and publishes nothing more) if a target that was
        free at the check now exists and ``force`` is not set."""
        blocked = {signal.SIGINT, signal.SIGTERM}
        main = threading.current_thread() is threading.main_thread()
        old = signal.pthread_sigmask(signal.SIG_BLOCK, blocked) if main else None
        self._created.clear()                   # published outputs keep their parents
        try:
            with _PUBLISH_LOCK:
                for target, staged, is_dir in self._items:
                    if staged.exists():
                        (self._publish_dir if is_dir else self._publish_file)(staged, target)
                return [t for t, _, _ in self._items]
        finally:
            self._cleanup()
            if main:
                signal.pthread_sigmask(signal.SIG_SETMASK, old)

    def discard(self) -> None:
        """Remove everything staged; publish nothing."""
        self._cleanup()

    def __enter__(self) -> "Outputs":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.publish()
        else:
            self.discard()

    def _publish_file(self, staged: Path, target: Path) -> None:
        if self.force:
            st = _stat(target)
            if st is not None:
                if not stat.S_ISREG(st.st_mode):
                    raise DelayhwError(f"{show_path(target)}: appeared meanwhile as "
                                       f"{_kind(st.st_mode)}; not replaced")
                _refuse_inputs(target, self.inputs, "output")
            os.replace(staged, target)
            return
        try:
            _rename_noreplace(staged, target)
        except FileExistsError:
            raise DelayhwError(f"{show_path(target)}: output appeared while this command ran "
                               f"(another job?); not replaced, pass --force to "
                               f"overwrite it") from None

    def _publish_dir(self, staged: Path, target: Path) -> None:
        try:
            _rename_noreplace(staged, target)
            return
        except FileExistsError:
            pass
        except OSError as exc:
            raise DelayhwError(f"{show_path(target)}: cannot publish ({exc.strerror})") from None
        st = _stat(target)
        if st is None or not stat.S_ISDIR(st.st_mode):
            raise DelayhwError(f"{show_path(target)}: appeared meanwhile as "
                               f"{'nothing' if st is None else _kind(st.st_mode)}; not replaced")
        try:
            os.rename(staged, target)        # replaces an empty directory as a whole
            return
        except OSError as exc:
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise DelayhwError(f"{show_path(target)}: cannot publish "
                                   f"({exc.strerror})") from None
        if not self.force:
            raise DelayhwError(f"{show_path(target)}: directory filled while this command ran "
                               f"(another job?); not replaced, pass --force to write into it")
        self._merge(staged, target)

    def _merge(self, staged: Path, target: Path) -> None:
        """Move the staged tree into the existing ``target``, file by file (``force``)."""
        for entry in sorted(staged.iterdir()):
            dest = target / entry.name
            if entry.is_dir() and not entry.is_symlink():
                st = _stat(dest)
                if st is None:
                    os.rename(entry, dest)
                elif stat.S_ISDIR(st.st_mode):
                    self._merge(entry, dest)
                else:
                    raise DelayhwError(f"{show_path(dest)}: is {_kind(st.st_mode)}, expected a "
                                       f"directory; not replaced")
            else:
                self._publish_file(entry, dest)


#: errno values that mean "the file system is full" (or the user's quota, or file size).
FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def check_free_space(path: str | os.PathLike, nbytes: int, what: str = "the outputs") -> None:
    """Refuse writing about ``nbytes`` under ``path`` (an existing directory) when its file
    system has less free space (for an unprivileged user) than that plus 1 MiB."""
    try:
        st = os.statvfs(path)
    except OSError:
        return                                # cannot tell: the write itself will say
    free = st.f_bavail * st.f_frsize
    if free < nbytes + (1 << 20):
        from .limits import fmt_bytes
        raise DelayhwError(f"{show_path(path)}: not enough free space for {what}: about "
                           f"{fmt_bytes(nbytes)} needed, {fmt_bytes(free)} free")


def copy_file(source: str | os.PathLike, path: str | os.PathLike, *, force: bool = False,
              flag: str = "output") -> Path:
    """Publish a copy of ``source`` at ``path`` (module rules)."""
    with Outputs(force=force, inputs=[source]) as outs:
        shutil.copyfile(source, outs.file(path, flag))
    return Path(path)
