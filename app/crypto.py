"""Envelope encryption of her sensitive fields, and real erasure by destroying her key.

Each peacebuilder has her own data key (AES-256-GCM). It is stored only wrapped by a
key-encryption key (KEK) that is not in the database: versioned files in SAFETY_NET_KEK_DIR (or
one key in the SAFETY_NET_KEK environment secret) for pilots; `KeyEncryptionKeys` is the hook a
KMS implements in production (wrap/unwrap by version). Every ciphertext carries associated data
naming its organisation, record and field, so a ciphertext moved elsewhere does not decrypt.

Erasure destroys her wrapped data key: everything sealed with it is unreadable wherever it is
held. Older backups still hold the wrapped key, so KEKs are rotated on a schedule (data keys are
re-wrapped) and old KEK versions destroyed after the backup retention period: that bounds the
window in which an old backup can be read (README, "Erasure").
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
from collections.abc import Callable
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PREFIX = "enc1:"
# Every service key (`<name>.key` beside the KEK versions) the service uses: the blind index, staff
# TOTP seeds, enrolment codes, the signed tenancy, the consent-row MAC, stored idempotent answers
# and webhook signing secrets. A read-only KEK mount (Kubernetes) must hold them all; `safety-net
# keys init` makes them.
SERVICE_KEYS = ("lookup", "totp", "enrolment", "tenancy", "consent", "idempotency", "webhook",
                "her_code", "web_session", "web_csrf", "web_oidc")


class KeyEncryptionKeys:
    """Versioned KEKs. A KMS-backed deployment replaces `_load`/`_store` with KMS calls."""

    def __init__(self, directory: Path, env_key: str = "") -> None:
        self.directory = directory
        self._env = base64.b64decode(env_key) if env_key else None
        # File contents by (path, inode, mtime): a page unwraps dozens of keys, and reading the
        # file each time cost more than the decryption. A stat per use still notices a version
        # destroyed or replaced by another process at once.
        self._files: dict[tuple[Path, int, int], bytes] = {}

    def _read(self, path: Path) -> bytes:
        st = path.stat()
        key = (path, st.st_ino, st.st_mtime_ns)
        found = self._files.get(key)
        if found is None:
            found = path.read_bytes()
            self._files = {k: v for k, v in self._files.items() if k[0] != path}
            self._files[key] = found
        return found

    def versions(self) -> list[int]:
        if self._env is not None:
            return [1]
        return sorted(int(p.stem.split("-v")[1]) for p in self.directory.glob("kek-v*.key"))

    @property
    def current(self) -> int:
        found = self.versions()
        return found[-1] if found else self.rotate()

    def _load(self, version: int) -> bytes:
        if self._env is not None:
            return self._env
        path = self.directory / f"kek-v{version}.key"
        try:
            return self._read(path)
        except FileNotFoundError as exc:
            raise KeyError(f"KEK version {version} has been destroyed or is missing") from exc

    def rotate(self) -> int:
        """A new KEK version (re-wrap data keys with `rewrap` so old versions can go)."""
        if self._env is not None:
            raise RuntimeError("rotate the environment KEK by deploying a new SAFETY_NET_KEK")
        self.directory.mkdir(parents=True, exist_ok=True)
        version = (self.versions() or [0])[-1] + 1
        fd = os.open(self.directory / f"kek-v{version}.key", os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                     0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(AESGCM.generate_key(bit_length=256))
        return version

    def destroy(self, version: int) -> None:
        (self.directory / f"kek-v{version}.key").unlink()

    def wrap(self, data_key: bytes, peacebuilder_id: str) -> tuple[int, bytes]:
        version = self.current
        nonce = secrets.token_bytes(12)
        aad = f"safety-net/data-key/{peacebuilder_id}/v{version}".encode()
        return version, nonce + AESGCM(self._load(version)).encrypt(nonce, data_key, aad)

    def unwrap(self, version: int, wrapped: bytes, peacebuilder_id: str) -> bytes:
        aad = f"safety-net/data-key/{peacebuilder_id}/v{version}".encode()
        return AESGCM(self._load(version)).decrypt(wrapped[:12], wrapped[12:], aad)

    def unwrapper(self) -> Callable[[int, bytes, str], bytes]:
        """`unwrap` for one batch (a page's keys): each KEK version is read, checked on disk
        and set up once for the batch instead of once per key."""
        ciphers: dict[int, AESGCM] = {}

        def unwrap(version: int, wrapped: bytes, peacebuilder_id: str) -> bytes:
            cipher = ciphers.get(version)
            if cipher is None:
                cipher = ciphers[version] = AESGCM(self._load(version))
            aad = f"safety-net/data-key/{peacebuilder_id}/v{version}".encode()
            return cipher.decrypt(wrapped[:12], wrapped[12:], aad)

        return unwrap


    def lookup_key(self) -> bytes:
        """Key of the blind index that lets filters match a sealed field without decrypting."""
        return self.service_key("lookup")

    def service_key(self, name: str) -> bytes:
        """A 256-bit key of the service itself (not of a person), kept where the KEKs are and
        never in the database: derived from the environment KEK, or a file beside the KEK
        versions (`<name>.key`, mode 600). Used for the blind index (`lookup`) and for staff
        secrets such as TOTP seeds (`totp`). It does not change when KEK versions rotate."""
        if not name.isidentifier():
            raise ValueError("service key names are identifiers")
        if self._env is not None:
            return hmac.new(self._env, f"safety-net/{name}".encode(), hashlib.sha256).digest()
        path = self.directory / f"{name}.key"
        if not path.exists():
            # Written whole under a temporary name, then linked into place: of two replicas
            # starting at once, one key wins and neither ever reads a half-written file.
            self.directory.mkdir(parents=True, exist_ok=True)
            tmp = self.directory / f".{name}.{secrets.token_hex(8)}.tmp"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(secrets.token_bytes(32))
                os.link(tmp, path)
            except FileExistsError:
                pass  # another process was first: use its key
            finally:
                tmp.unlink()
        return self._read(path)


def lookup(key: bytes, field: str, value: str) -> str:
    """Blind index of a value: equality search without storing or revealing the value."""
    return hmac.new(key, f"{field}\x00{value.strip().casefold()}".encode(), hashlib.sha256).hexdigest()


def new_data_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def associated(org_id: object, table: str, record_id: object, field: str) -> bytes:
    return f"{org_id}|{table}|{record_id}|{field}".encode()


def seal(data_key: bytes, aad: bytes, plaintext: str) -> str:
    nonce = secrets.token_bytes(12)
    sealed = nonce + AESGCM(data_key).encrypt(nonce, plaintext.encode(), aad)
    return PREFIX + base64.b64encode(sealed).decode()


class Unreadable(Exception):
    """Erased (key destroyed), tampered with, or moved from another record."""


def open_sealed(data_key: bytes | None, aad: bytes, token: str) -> str:
    if not token.startswith(PREFIX) or data_key is None:
        raise Unreadable()
    try:
        # binascii's strict mode: b64decode(validate=True) without its regex pass per value.
        raw = binascii.a2b_base64(token[len(PREFIX):], strict_mode=True)
        return AESGCM(data_key).decrypt(raw[:12], raw[12:], aad).decode()
    except (InvalidTag, ValueError) as exc:  # ValueError: not base64, or too short
        raise Unreadable() from exc


def seal_bytes(data_key: bytes, aad: bytes, plaintext: bytes) -> bytes:
    """Binary form of `seal` for files (LargeBinary columns): nonce + ciphertext + tag."""
    nonce = secrets.token_bytes(12)
    return nonce + AESGCM(data_key).encrypt(nonce, plaintext, aad)


def open_bytes(data_key: bytes | None, aad: bytes, sealed: bytes) -> bytes:
    if data_key is None or len(sealed) < 28:
        raise Unreadable()
    try:
        return AESGCM(data_key).decrypt(sealed[:12], sealed[12:], aad)
    except InvalidTag as exc:
        raise Unreadable() from exc
