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
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ORIGIN = "safety-net/access-log"


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
        """Make a new signing key; the old public key stays for verifying old checkpoints."""
        self.key_dir.mkdir(parents=True, exist_ok=True)
        key = Ed25519PrivateKey.generate()
        public = key.public_key()
        kid = key_id(public)
        (self.key_dir / f"{kid}.pub").write_bytes(public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
        tmp = self.key_dir / "signing.pem.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
        tmp.replace(self.key_dir / "signing.pem")
        self._key, self.key_id = key, kid
        return kid

    def sign(self, size: int, head: str, time: datetime) -> Checkpoint:
        signature = self._key.sign(_body(size, head, time))
        return Checkpoint(size=size, head=head, time=time, key_id=self.key_id, signature=signature)


def public_keys(key_dir: Path) -> dict[str, Ed25519PublicKey]:
    keys: dict[str, Ed25519PublicKey] = {}
    for path in sorted(key_dir.glob("*.pub")):
        key = serialization.load_pem_public_key(path.read_bytes())
        if isinstance(key, Ed25519PublicKey):
            keys[key_id(key)] = key
    return keys


def render(cp: Checkpoint) -> str:
    return cp.body().decode() + f"\n— {cp.key_id} {base64.b64encode(cp.signature).decode()}\n"


def write(directory: Path, cp: Checkpoint) -> Path:
    """Write a checkpoint file once; an existing file of that size is never overwritten."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{cp.size:012d}.note"
    if path.exists():
        return path
    tmp = directory / f".{cp.size:012d}.{os.getpid()}.tmp"
    tmp.write_text(render(cp), encoding="utf-8")
    try:
        os.link(tmp, path)  # atomic, and fails rather than replace a checkpoint
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return path


class BadCheckpoint(ValueError):
    pass


def parse(text: str, path: Path | None = None) -> Checkpoint:
    try:
        body, _, sig_line = text.partition("\n\n")
        origin, size, head, time = body.split("\n")[:4]
        dash, kid, sig = sig_line.strip().split(" ")
        if origin != ORIGIN or dash != "—":
            raise ValueError
        return Checkpoint(size=int(size), head=head, time=datetime.fromisoformat(time),
                          key_id=kid, signature=base64.b64decode(sig), path=path)
    except (ValueError, TypeError) as exc:
        raise BadCheckpoint(f"{path or 'checkpoint'}: not a valid checkpoint") from exc


def check_signature(cp: Checkpoint, keys: dict[str, Ed25519PublicKey]) -> None:
    key = keys.get(cp.key_id)
    if key is None:
        raise BadCheckpoint(f"{cp.path or 'checkpoint'}: signed by unknown key {cp.key_id}")
    try:
        key.verify(cp.signature, cp.body())
    except InvalidSignature as exc:
        raise BadCheckpoint(f"{cp.path or 'checkpoint'}: bad signature") from exc


def load_all(directory: Path) -> list[Checkpoint]:
    if not directory.exists():
        return []
    return sorted((parse(p.read_text(encoding="utf-8"), p) for p in directory.glob("*.note")),
                  key=lambda c: c.size)


def latest(directory: Path) -> Checkpoint | None:
    found = load_all(directory)
    return found[-1] if found else None
