"""The signed tenancy: what makes the database's wall something the service password cannot open.

Settings such as `safety_net.scope` are not privileged: any role that may connect can set them.
So the application signs what it decided: every transaction's `set_config` statement carries,
beside the four settings of `app/tenancy.py`, the SHA-256 of the peacebuilders list, an
expiry and an HMAC-SHA256 over them with the service key `tenancy` (app/crypto.py: kept with
the KEKs, never readable by the service or background database roles). Inside PostgreSQL the
SECURITY DEFINER function `sn_verified_scope()` (migrations/versions/0008_signed_tenancy.py)
verifies it with the database's copy of the key, which only the schema owner can read; the
`sn_*` functions every policy calls read the scope as 'none' unless it verifies, and the system
scope only for the background role. A session that sets the values by hand, replays a signature
with other values, or keeps using one past its expiry, sees and writes nothing.

The expiry is checked at every statement (`statement_timestamp()`), so a captured signature
stops working `ttl` seconds after it was made, even inside a transaction held open: `ttl` must
cover the longest legitimate transaction of the engine that signs it (requests: the request
timeout; background and console work: longer), and the clock difference between the app and
the database. An expired signature is an error, not an empty result, so a transaction that
outlives it fails loudly instead of reading less.

docs/decisions/0015-signed-tenancy.md says why, and what it does not protect against.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any

from app.tenancy import Scope, Tenancy

VERSION = "v1"
KEY_NAME = "tenancy"
# Consent rows are MACed with another service key (app/tables/integrity.py).
CONSENT_KEY_NAME = "consent"

# One statement per transaction: the four settings the policies read, and what proves them.
SET_TEXT = ("SELECT set_config('safety_net.scope', :scope, true), "
            "set_config('safety_net.org', :org, true), "
            "set_config('safety_net.peacebuilders', :peacebuilders, true), "
            "set_config('safety_net.log_orgs', :log_orgs, true), "
            "set_config('safety_net.peacebuilders_sha256', :peacebuilders_sha256, true), "
            "set_config('safety_net.expires', :expires, true), "
            "set_config('safety_net.mac', :mac, true)")


class WallError(RuntimeError):
    """A tenancy this engine may not sign (the system scope on the service role's engine)."""


def message(values: dict[str, str]) -> str:
    """What the MAC covers; `sn_verified_scope()` builds the same text from the settings. No
    value can hold '|' (a scope word, UUIDs and commas, hex, digits): fields cannot shift."""
    return "|".join((VERSION, values["scope"], values["org"], values["log_orgs"],
                     values["peacebuilders_sha256"], values["expires"]))


def pads(key: bytes) -> tuple[bytes, bytes]:
    """HMAC's inner and outer key blocks (RFC 2104, SHA-256's 64-byte block): what the database
    stores, so it computes HMAC with the built-in sha256() and needs no extension."""
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    key = key.ljust(64, b"\0")
    return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)


def fingerprint(key: bytes) -> str:
    """Names a key without revealing it: tells `safety-net migrate` and `serve` whether the
    database holds the same key as this process."""
    return hmac.new(key, b"safety-net/key-fingerprint", hashlib.sha256).hexdigest()[:16]


class Wall:
    """Signs tenancies for one engine, and hands the consent MAC key to the rows' events.

    `keys` is the deployment's `KeyEncryptionKeys` (set by Runtime after the Database is built);
    without it nothing is signed, so the database grants nothing. `may_sign_system` is False on
    the service role's engine when a background engine exists: the system scope is the
    background role's only, and a request asking for it is a bug that must fail loudly."""

    def __init__(self, ttl: int, *, may_sign_system: bool = True) -> None:
        self.ttl = ttl
        self.may_sign_system = may_sign_system
        self.keys: Any = None
        self._cache: dict[str, bytes] = {}

    def key(self, name: str) -> bytes | None:
        if name not in self._cache:
            if self.keys is None:
                return None
            self._cache[name] = self.keys.service_key(name)
        return self._cache[name]

    def signed(self, tenancy: Tenancy, *, now: float | None = None) -> dict[str, str]:
        """The parameters of SET_TEXT for `tenancy`. Wall-clock time, never the app's Clock
        (tests move that one): the database compares with its own clock."""
        if tenancy.scope is Scope.SYSTEM and not self.may_sign_system:
            raise WallError("the system scope runs on the background role's connection only")
        values = tenancy.settings()
        values["peacebuilders_sha256"] = hashlib.sha256(values["peacebuilders"].encode()).hexdigest()
        values["expires"] = str(int(now if now is not None else time.time()) + self.ttl)
        key = self.key(KEY_NAME) if tenancy.scope is not Scope.NONE else None
        values["mac"] = (hmac.new(key, message(values).encode(), hashlib.sha256).hexdigest()
                         if key is not None else "")
        return values
