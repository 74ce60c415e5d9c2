"""The built-in issuer's signing keys: Ed25519, generated on first start, kept out of git."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

from joserfc.jwk import KeySet, OKPKey

ALGORITHM = "Ed25519"


def load_or_create(path: Path) -> KeySet:
    """Load the key set, creating a file readable only by the service when there is none."""
    if path.exists():
        return KeySet.import_key_set(json.loads(path.read_text()))
    path.parent.mkdir(parents=True, exist_ok=True)
    keyset = KeySet([_new_key()])
    _write_private(path, dict(keyset.as_dict(private=True)))
    return keyset


def rotate(path: Path, keep: int = 2) -> KeySet:
    """Add a new signing key in front; older keys stay published to verify live tokens."""
    current = load_or_create(path)
    keys = [_new_key(), *current.keys][:keep]
    keyset = KeySet(keys)
    _write_private(path, dict(keyset.as_dict(private=True)))
    return keyset


def signing_key(keyset: KeySet) -> Any:
    return keyset.keys[0]


def public_jwks(keyset: KeySet) -> dict[str, Any]:
    return dict(keyset.as_dict(private=False))


def _new_key() -> OKPKey:
    return OKPKey.generate_key("Ed25519", parameters={"kid": secrets.token_hex(8)}, private=True)


def _write_private(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh)
    tmp.replace(path)
