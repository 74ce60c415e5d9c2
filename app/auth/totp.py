"""TOTP (RFC 6238, HMAC-SHA1, 6 digits, 30-second steps): what authenticator apps implement.

Small enough to own rather than add a dependency; checked against the RFC's test vectors.
"""

from __future__ import annotations

import base64
import hmac
import secrets
import struct
from urllib.parse import quote, urlencode

STEP = 30
DIGITS = 6
# Codes of the previous and next step are accepted too: phone clocks drift.
WINDOW = 1


def new_secret() -> str:
    """160 random bits, base32 without padding (the form authenticator apps take)."""
    return base64.b32encode(secrets.token_bytes(20)).decode().rstrip("=")


def _key(secret: str) -> bytes:
    return base64.b32decode(secret.upper() + "=" * (-len(secret) % 8))


def code_at(secret: str, step: int, *, digits: int = DIGITS, digest: str = "sha1") -> str:
    """The code of one time step (HOTP over the step counter, RFC 4226 truncation)."""
    mac = hmac.new(_key(secret), struct.pack(">Q", step), digest).digest()
    offset = mac[-1] & 0x0F
    value = struct.unpack(">I", mac[offset:offset + 4])[0] & 0x7FFFFFFF
    return str(value % 10 ** digits).zfill(digits)


def step_of(unix_time: float) -> int:
    return int(unix_time // STEP)


def matching_step(secret: str, code: str, unix_time: float) -> int | None:
    """The time step whose code this is (within the window), or None."""
    code = code.strip().replace(" ", "")
    if len(code) != DIGITS or not code.isdigit():
        return None
    now = step_of(unix_time)
    found = None
    for step in range(now - WINDOW, now + WINDOW + 1):
        # Compare every candidate in constant time; no early exit on a match.
        if hmac.compare_digest(code_at(secret, step), code):
            found = step
    return found


def provisioning_uri(secret: str, *, account: str, issuer: str) -> str:
    """otpauth:// URI for a QR code (Key Uri Format of Google Authenticator)."""
    label = quote(f"{issuer}:{account}", safe="")
    query = urlencode({"secret": secret, "issuer": issuer, "algorithm": "SHA1",
                       "digits": DIGITS, "period": STEP})
    return f"otpauth://totp/{label}?{query}"
