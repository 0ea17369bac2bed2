"""Build and check promoted files in a staging copy of the firmware tree, then rename them into place.

A promotion never writes into ``firmware/include`` or ``firmware/fpga`` before
its check has passed: the new files are written into a private copy of the
parts of the firmware tree the check needs, under ``<firmware>/build/staging/``
(the same filesystem, so the final rename is atomic), checked there, and only
then renamed onto the real paths. A kill at any instant leaves either the old
files or the new, checked ones:

- one header: one ``os.replace``;
- the FPGA set (three files): the staged ``fpga/`` directory, a copy of the real
  one with the new files, is swapped with the real one in one ``renameat2``
  ``RENAME_EXCHANGE`` call (Linux), so no instant shows a mix. Where the system
  cannot exchange, the files are renamed one by one with SIGTERM, SIGINT and
  SIGHUP blocked, so only an uncatchable SIGKILL or a power loss in the
  microseconds between two renames could mix them.

SIGTERM, SIGINT and SIGHUP during a promotion raise :class:`PromotionInterrupted`
(:func:`interrupts_as_errors`): the compiler the check is running is killed by
``subprocess.run``, the staging copy is removed, and the real files are untouched
unless the rename had already happened.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import shutil
import signal
import tempfile
import threading
from pathlib import Path
from typing import Iterator

from simbaflow.core.errors import SimbaflowError

#: Where staging copies go, relative to the firmware directory (git-ignored ``build/``).
STAGING_DIR = "build/staging"

#: The signals a promotion turns into :class:`PromotionInterrupted`, and defers while renaming.
SIGNALS = tuple(s for s in (getattr(signal, n, None) for n in ("SIGTERM", "SIGINT", "SIGHUP")) if s is not None)


class PromotionInterrupted(SimbaflowError):
    """A signal stopped the promotion; the message says what happened to the firmware files."""

    def __init__(self, message: str, signum: int):
        super().__init__(message, exit_code=128 + signum)
        self.signum = signum


class FirmwareNotWritable(SimbaflowError):
    """The firmware tree cannot take the staging copy or the new files."""


@contextlib.contextmanager
def interrupts_as_errors() -> Iterator[None]:
    """Within the block, SIGTERM, SIGINT and SIGHUP raise :class:`PromotionInterrupted`.

    The default action of SIGTERM ends the process at once, without ``finally``
    clauses: the staging copy would stay behind and a compiler would be orphaned.
    Only the main thread can install handlers; elsewhere the block runs as it is.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise PromotionInterrupted(f"interrupted by {signal.Signals(signum).name}", signum)

    previous = {sig: signal.signal(sig, handler) for sig in SIGNALS}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old if old is not None else signal.SIG_DFL)


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Block :data:`SIGNALS` within the block; one sent meanwhile is delivered when it ends."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


@contextlib.contextmanager
def staging_tree(firmware_dir: Path, parts: tuple[str, ...]) -> Iterator[Path]:
    """A private copy of ``parts`` (paths relative to ``firmware_dir``) under ``<firmware>/build/staging/``.

    Yields the copy's root, which the check then uses as its firmware
    directory; it is removed when the block ends, whatever happens.

    Raises
    ------
    FirmwareNotWritable
        When the staging directory cannot be made (read-only tree, no space...).
    """
    root = firmware_dir / STAGING_DIR
    try:
        root.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix="promote-", dir=root))
    except OSError as exc:
        raise FirmwareNotWritable(f"{root}: cannot create the staging directory ({exc.strerror}); "
                                  f"expected a writable firmware tree at {firmware_dir}") from None
    try:
        try:
            for part in parts:
                src = firmware_dir / part
                if src.is_dir():
                    shutil.copytree(src, stage / part, symlinks=True)
                elif src.is_file():
                    (stage / part).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(src, stage / part)
        except OSError as exc:
            raise FirmwareNotWritable(f"{stage}: cannot copy {firmware_dir} into the staging directory "
                                      f"({exc.strerror or exc})") from None
        yield stage
    finally:
        # Deferred: a second Ctrl-C must not leave half a copy behind.
        with signals_deferred():
            shutil.rmtree(stage, ignore_errors=True)
            with contextlib.suppress(OSError):
                root.rmdir()  # only when no other promotion is staging there


def check_writable(directory: Path) -> None:
    """Refuse early, before a check that takes seconds, when ``directory`` cannot take a new file.

    A probe file is created and removed: permission bits do not tell (root
    ignores them; read-only mounts and immutable directories do not show in them).

    Raises
    ------
    FirmwareNotWritable
    """
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".promote-probe-", dir=directory)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise FirmwareNotWritable(f"{directory}: cannot write there ({exc.strerror}); "
                                  "expected a writable firmware tree") from None


def write_staged(path: Path, text: str) -> None:
    """Write ``text`` to a staged file and flush it to disk, so the rename publishes whole contents."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(path, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        raise FirmwareNotWritable(f"{path}: cannot write the staged file ({exc.strerror})") from None


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def replace_file(staged: Path, target: Path) -> None:
    """Rename ``staged`` onto ``target`` (atomic), signals deferred so the caller learns it happened.

    Raises
    ------
    FirmwareNotWritable
        When the rename fails; ``target`` is then unchanged.
    """
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with signals_deferred():
            os.replace(staged, target)
    except OSError as exc:
        raise FirmwareNotWritable(f"{target}: cannot be replaced ({exc.strerror}); it is unchanged") from None
    _fsync_dir(target.parent)


def _exchange(a: Path, b: Path) -> bool:
    """Swap directories ``a`` and ``b`` in one system call; False where the system cannot."""
    libc = ctypes.CDLL(None, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        return False
    at_fdcwd, rename_exchange = -100, 2
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def replace_directory(staged: Path, target: Path, names: list[str]) -> None:
    """Put the staged directory's ``names`` in ``target`` as one set.

    ``staged`` is a full copy of ``target`` with the new files: the two are
    exchanged atomically (``staged`` then holds the old directory, removed with
    the staging copy). Without an exchange the ``names`` are renamed one by one,
    signals deferred (see the module docstring).

    Raises
    ------
    FirmwareNotWritable
        When a rename fails.
    """
    try:
        with signals_deferred():
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                os.rename(staged, target)
            elif not (target.is_dir() and not target.is_symlink() and _exchange(staged, target)):
                for name in names:
                    os.replace(staged / name, target / name)
    except OSError as exc:
        raise FirmwareNotWritable(f"{target}: cannot be replaced ({exc.strerror})") from None
    _fsync_dir(target.parent)
