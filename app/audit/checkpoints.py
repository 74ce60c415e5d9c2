"""Signed checkpoints of the access log, in the shape of a transparency-log signed note.

A checkpoint commits to the log's size and chain head at a time, signed with an Ed25519 key kept
outside the database. Checkpoints are files in a directory the database role cannot rewrite
(production: a write-once bucket or a volume only the service writes; see README). Old public
keys stay in the key directory so checkpoints signed before a rotation still verify.

    safety-net/access-log
    <size>
    <chain head, hex>
    <time, RFC 3339 UTC>

    — <key id> <base64 signature>

The directory, shared by every replica (a ReadWriteMany volume):

- `<size, 12 digits>.note`: one checkpoint per file, written once and never replaced: a
  temporary file is written and fsynced, then hard-linked to its name (atomic, and it fails
  rather than replace a checkpoint a racing writer made first), then the directory is fsynced.
- `latest`: the pointer, one line naming the newest `.note` file, so a log-worker pass reads
  two small files whatever the directory holds. It is replaced atomically (temporary file,
  fsync, rename, fsync of the directory) and only ever names a file that was a valid checkpoint
  when it was written. It may lag (a writer stopped between the two renames, or lost a race):
  `latest(hint=size)` looks at the file named by the log's size too, and a missing, malformed or
  dangling pointer is rebuilt by scanning the directory once (logged). `audit verify` never
  trusts it: it reads every `.note` file.
- `.*.tmp` files are leftovers of writes cut short by a crash: never read, safe to delete.
"""

from __future__ import annotations

import base64
import errno
import fcntl
import hashlib
import logging
import os
import re
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ORIGIN = "safety-net/access-log"
POINTER = "latest"
LOCK = ".latest.lock"
NOTE = re.compile(r"(\d{12})\.note")
_POINTER_TEXT = re.compile(rb"(\d{12})\.note\n")
SIGNATURE_BYTES = 64  # Ed25519

log = logging.getLogger("safety_net.audit")


@dataclass(frozen=True)
class Checkpoint:
    size: int
    head: str
    time: datetime
    key_id: str
    signature: bytes
    path: Path | None = None

    def body(self) -> bytes:
        return _body(self.size, self.head, self.time)


def _body(size: int, head: str, time: datetime) -> bytes:
    return f"{ORIGIN}\n{size}\n{head}\n{time.astimezone(UTC).isoformat()}\n".encode()


def key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def note_name(size: int) -> str:
    return f"{size:012d}.note"


class Signer:
    """The checkpoint signing key: `<key dir>/signing.pem` (0600), public keys beside it."""

    def __init__(self, key_dir: Path) -> None:
        self.key_dir = key_dir
        private = key_dir / "signing.pem"
        if not private.exists():
            self.rotate()
        key = serialization.load_pem_private_key(private.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{private} is not an Ed25519 key")
        self._key: Ed25519PrivateKey = key
        self.key_id = key_id(key.public_key())

    def rotate(self) -> str:
        """Make a new signing key; the old public key stays for verifying old checkpoints.
        Both files are fsynced before they get their names: a power cut leaves the old key or
        the new one, never an empty key file."""
        self.key_dir.mkdir(parents=True, exist_ok=True)
        key = Ed25519PrivateKey.generate()
        public = key.public_key()
        kid = key_id(public)
        _replace_durably(self.key_dir / f"{kid}.pub", public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo), 0o644)
        _replace_durably(self.key_dir / "signing.pem", key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()), 0o600)
        self._key, self.key_id = key, kid
        return kid

    def sign(self, size: int, head: str, time: datetime) -> Checkpoint:
        signature = self._key.sign(_body(size, head, time))
        return Checkpoint(size=size, head=head, time=time, key_id=self.key_id, signature=signature)


def public_keys(key_dir: Path) -> dict[str, Ed25519PublicKey]:
    """The trusted public keys; an unreadable key file is logged and left out (checkpoints it
    signed then fail as "signed by unknown key", which names the key)."""
    keys: dict[str, Ed25519PublicKey] = {}
    for path in sorted(key_dir.glob("*.pub")):
        try:
            key = serialization.load_pem_public_key(path.read_bytes())
        except (OSError, ValueError, TypeError) as exc:
            log.warning("checkpoint public key %s unreadable, left out: %s", path,
                        type(exc).__name__)
            continue
        if isinstance(key, Ed25519PublicKey):
            keys[key_id(key)] = key
    return keys


def render(cp: Checkpoint) -> str:
    return cp.body().decode() + f"\n— {cp.key_id} {base64.b64encode(cp.signature).decode()}\n"


class BadCheckpoint(ValueError):
    pass


def parse(text: str, path: Path | None = None) -> Checkpoint:
    where = path or "checkpoint"
    if not text.endswith("\n"):
        # Every note ends with a newline: one that does not was cut short.
        raise BadCheckpoint(f"{where}: truncated ({len(text.encode())} bytes, the end is missing)"
                            " — not a checkpoint; most likely a write cut short by a crash")
    try:
        body, _, sig_line = text.partition("\n\n")
        origin, size, head, time = body.split("\n")[:4]
        dash, kid, sig = sig_line.strip().split(" ")
        signature = base64.b64decode(sig, validate=True)
        if origin != ORIGIN or dash != "—" or len(signature) != SIGNATURE_BYTES:
            raise ValueError
        return Checkpoint(size=int(size), head=head, time=datetime.fromisoformat(time),
                          key_id=kid, signature=signature, path=path)
    except (ValueError, TypeError) as exc:
        raise BadCheckpoint(f"{where}: not a valid checkpoint") from exc


def read(path: Path) -> Checkpoint:
    """One checkpoint file. FileNotFoundError if it is absent; BadCheckpoint, saying why, if it is
    empty, truncated, unparseable or holds another size than its name says."""
    data = path.read_bytes()
    if not data:
        raise BadCheckpoint(f"{path}: empty file (0 bytes) — not a checkpoint; most likely a write "
                            "cut short by a power cut or crash before checkpoints were fsynced")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadCheckpoint(f"{path}: not a valid checkpoint (not UTF-8 text)") from exc
    cp = parse(text, path)
    named = NOTE.fullmatch(path.name)
    if named and int(named[1]) != cp.size:
        raise BadCheckpoint(f"{path}: holds the checkpoint of size {cp.size}, not the one its "
                            "name says: checkpoint files were renamed")
    return cp


def check_signature(cp: Checkpoint, keys: dict[str, Ed25519PublicKey]) -> None:
    key = keys.get(cp.key_id)
    if key is None:
        raise BadCheckpoint(f"{cp.path or 'checkpoint'}: signed by unknown key {cp.key_id}")
    try:
        key.verify(cp.signature, cp.body())
    except InvalidSignature as exc:
        raise BadCheckpoint(f"{cp.path or 'checkpoint'}: bad signature") from exc


# --- reading everything (audit verify) ------------------------------------------------------------

def load_all(directory: Path) -> tuple[list[Checkpoint], list[BadCheckpoint]]:
    """Every `*.note` file, sorted by size, and the files that are not valid checkpoints (each
    a problem of its own: one bad file does not hide the others)."""
    if not directory.exists():
        return [], []
    good: list[Checkpoint] = []
    bad: list[BadCheckpoint] = []
    for path in sorted(directory.glob("*.note")):
        try:
            good.append(read(path))
        except BadCheckpoint as exc:
            bad.append(exc)
        except OSError as exc:
            bad.append(BadCheckpoint(f"{path}: unreadable ({type(exc).__name__}: {exc.strerror})"))
    good.sort(key=lambda c: c.size)
    return good, bad


# --- the newest checkpoint in O(1) files (the log worker, exports, metrics) ----------------------

_reported: set[str] = set()  # bad files already logged by this process (a pass runs every second)


def _report_once(exc: Exception) -> None:
    message = str(exc)
    if message not in _reported:
        _reported.add(message)
        log.warning("checkpoint file: %s", message)


def _read_pointer(directory: Path) -> int | None:
    """The size the pointer names; None if it is absent or malformed."""
    try:
        data = (directory / POINTER).read_bytes()
    except FileNotFoundError:
        return None
    found = _POINTER_TEXT.fullmatch(data)
    return int(found[1]) if found else None


def _read_if_valid(path: Path) -> Checkpoint | None:
    try:
        return read(path)
    except FileNotFoundError:
        return None
    except (OSError, BadCheckpoint) as exc:
        _report_once(exc)
        return None


def latest(directory: Path, *, hint: int | None = None) -> Checkpoint | None:
    """The newest checkpoint, reading the pointer and the file it names (plus, if the pointer is
    behind `hint` — the log's size — the file of that size, which a writer stopped before moving
    the pointer may have left). A missing, malformed or dangling pointer is rebuilt by one scan.
    Blocking file I/O: call it from a thread (`asyncio.to_thread`) in the service."""
    if not directory.is_dir():
        return None
    size = _read_pointer(directory)
    found = _read_if_valid(directory / note_name(size)) if size is not None else None
    if found is None:
        why = ("missing or malformed" if size is None else
               f"names {note_name(size)}, which is missing or not a valid checkpoint")
        found = rebuild(directory, why)
    if hint is not None and hint > (found.size if found else 0):
        newer = _read_if_valid(directory / note_name(hint))
        if newer is not None:
            _try_advance_pointer(directory, newer.size)
            found = newer
    return found


def _try_advance_pointer(directory: Path, size: int) -> None:
    """Repairing the pointer is a favour to the next reader: the answer stands without it
    (a read-only copy of the directory, a full disk)."""
    try:
        _advance_pointer(directory, size)
    except OSError as exc:
        _report_once(OSError(exc.errno, f"pointer {directory / POINTER} not updated: "
                                        f"{exc.strerror}"))


# Directories whose last scan found no valid checkpoint, with their mtime then: not scanned again
# until an entry is added, removed or renamed (before the first checkpoint, every pass would).
_scanned_empty: dict[str, int] = {}


def rebuild(directory: Path, why: str = "rebuild asked for") -> Checkpoint | None:
    """Find the newest valid checkpoint by listing the directory (the slow path: once after an
    upgrade or a lost pointer), and point the pointer at it."""
    mtime = directory.stat().st_mtime_ns
    if _scanned_empty.get(str(directory)) == mtime:
        return None
    started = time.monotonic()
    with os.scandir(directory) as entries:
        sizes = sorted((int(m[1]) for e in entries if (m := NOTE.fullmatch(e.name))), reverse=True)
    found = None
    for size in sizes:
        found = _read_if_valid(directory / note_name(size))
        if found is not None:
            break
    if sizes:
        log.warning("checkpoint pointer %s/%s %s: rebuilt by scanning %d checkpoint files in "
                    "%.2fs; newest valid: %s", directory, POINTER, why, len(sizes),
                    time.monotonic() - started, note_name(found.size) if found else "none")
    if found is None:
        _scanned_empty[str(directory)] = mtime
        return None
    _scanned_empty.pop(str(directory), None)
    _try_advance_pointer(directory, found.size)
    return found


# --- writing ---------------------------------------------------------------------------------------

def write(directory: Path, cp: Checkpoint) -> Path:
    """Write a checkpoint file once (an existing file of that size is never overwritten) and move
    the pointer to it; returns its path."""
    publish(directory, cp)
    return directory / note_name(cp.size)


def publish(directory: Path, cp: Checkpoint) -> Checkpoint | None:
    """Write `cp` as `<size>.note` unless that file exists, durably, and move the pointer forward
    to it. Returns the checkpoint now stored at that size — ours, or the one a racing writer
    stored first — or None if the file there is not a valid checkpoint (left as it is, for
    `audit verify` to report). Blocking file I/O: call it from a thread in the service."""
    created_dir = not directory.exists()
    directory.mkdir(parents=True, exist_ok=True)
    if created_dir:
        _fsync_dir(directory.parent)
    path = directory / note_name(cp.size)
    stored: Checkpoint | None = None
    if not path.exists():
        tmp = directory / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
        try:
            _write_new(tmp, render(cp).encode())
            os.link(tmp, path)  # atomic, and fails rather than replace a checkpoint
            stored = replace(cp, path=path)
        except FileExistsError:
            pass  # a racing writer got there first: theirs stands
        finally:
            tmp.unlink(missing_ok=True)
        _fsync_dir(directory)
    if stored is None:
        stored = _read_if_valid(path)
        if stored is None:
            return None
    _advance_pointer(directory, stored.size)
    return stored


def _write_new(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Create `path` (it must not exist), write `data` and fsync it."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)


def _replace_durably(path: Path, data: bytes, mode: int) -> None:
    """Temporary file, fsync, rename over `path`, fsync the directory."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        _write_new(tmp, data, mode)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    """Make renames and links in `directory` durable. Filesystems that cannot fsync a directory
    (some network and FUSE ones) say so with EINVAL/ENOTSUP: nothing more can be done there."""
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
            raise
    finally:
        os.close(fd)


@contextmanager
def _pointer_lock(directory: Path) -> Iterator[None]:
    """An advisory lock between writers moving the pointer (replicas and threads), so it only
    moves forward. Best effort: where the filesystem has no locks, or a holder is stuck, writers
    go ahead without it — the pointer may then lag, which readers tolerate (see `latest`)."""
    try:
        fd = os.open(directory / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        yield
        return
    try:
        for attempt in range(20):  # about 1.5 s; a holder keeps it for a few fsyncs
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                time.sleep(0.01 * min(attempt + 1, 10))
            except OSError:
                break  # no locks on this filesystem
        else:
            log.warning("checkpoint pointer lock %s/%s busy for 1.5s: going ahead without it",
                        directory, LOCK)
        yield
    finally:
        os.close(fd)  # releases the lock


def _advance_pointer(directory: Path, size: int) -> None:
    """Point `latest` at `<size>.note` (a valid checkpoint) unless it names a newer valid one."""
    with _pointer_lock(directory):
        for _ in range(3):
            current = _read_pointer(directory)
            if current is not None and current >= size and (
                    current == size or _read_if_valid(directory / note_name(current)) is not None):
                return
            _replace_durably(directory / POINTER, f"{note_name(size)}\n".encode(), 0o644)
            after = _read_pointer(directory)
            if after is not None and after >= size:
                return
        log.warning("checkpoint pointer %s/%s: lost the race to other writers three times; "
                    "it may lag until the next checkpoint", directory, POINTER)
