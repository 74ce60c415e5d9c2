"""Password and client-secret hashing."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
# A fixed hash to verify against when the user does not exist, so timing does not tell.
_DUMMY = _hasher.hash("not-a-real-password")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    try:
        return _hasher.verify(stored or _DUMMY, password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    # Client secrets are 256 random bits: a fast hash is enough and keeps the token endpoint fast.
    return "sha256$" + hashlib.sha256(secret.encode()).hexdigest()


def verify_secret(stored: str | None, secret: str) -> bool:
    candidate = hash_secret(secret)
    return hmac.compare_digest(stored or "sha256$", candidate) and stored is not None
