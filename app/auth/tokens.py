"""Issuing and verifying access tokens (JWT, joserfc): built-in issuer or external OIDC."""

from __future__ import annotations

import base64
import json
import secrets
import time
import warnings
from dataclasses import dataclass
from typing import Any

import httpx
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jwt import JWTClaimsRegistry

from app.auth import keys
from app.config import Settings
from app.errors import Unauthenticated

CLOCK_SKEW = 30

# RFC 9864 deprecates the JOSE name "EdDSA" for "Ed25519"; providers still sign with it (and we
# accept both, Ed25519 keys only): the library's warning would otherwise fire on every request.
warnings.filterwarnings("ignore", message="EdDSA is deprecated")


@dataclass(frozen=True)
class Claims:
    """What the edge needs from a verified token."""

    subject: str  # "user:<uuid>", "client:<uuid>", "peacebuilder:<uuid>" (built-in issuer);
    # "oidc:<sub>" (the provider: the user bound to its issuer + sub, `principals.resolve`)
    org: str | None  # organisation id (built-in issuer); None from the provider
    username: str | None  # unused: a provider's names never select a user (decision 0020)
    auth_time: int | None
    acr: str | None
    raw: dict[str, Any]
    session_id: str | None = None  # built-in issuer: the person's session (`sid`), checked live


class IssuerUnavailable(Exception):
    """The external issuer's keys cannot be fetched and none are cached."""


class Issuer:
    """The built-in issuer for pilots: signs short-lived tokens with the local key set."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.keyset = keys.load_or_create(settings.signing_key_path)
        self._signed: dict[str, tuple[KeySet, dict[str, Any]]] = {}

    def issue(self, *, subject: str, org_id: str | None, acr: str = "pwd",
              now: float | None = None, auth_time: int | None = None,
              session_id: str | None = None, max_ttl: int | None = None) -> tuple[str, int]:
        """A signed access token. `auth_time` defaults to now (a sign-in); a refresh passes the
        session's, with its `sid` and the session's remaining life as `max_ttl`."""
        now = int(now if now is not None else time.time())
        ttl = self.settings.token_ttl_seconds
        if max_ttl is not None:
            ttl = min(ttl, max_ttl)
        claims: dict[str, Any] = {
            "iss": self.settings.issuer_url, "aud": self.settings.audience, "sub": subject,
            "iat": now, "nbf": now, "exp": now + ttl, "jti": secrets.token_hex(16),
            "auth_time": auth_time if auth_time is not None else now, "acr": acr,
        }
        if org_id is not None:
            claims["org"] = org_id
        if session_id is not None:
            claims["sid"] = session_id
        key = keys.signing_key(self.keyset)
        header = {"alg": keys.ALGORITHM, "kid": key.kid, "typ": "at+jwt"}
        return jwt.encode(header, claims, key, algorithms=[keys.ALGORITHM]), ttl

    def verify(self, token: str) -> Claims:
        data = self._verified(token)
        sub = data.get("sub")
        if not isinstance(sub, str) or ":" not in sub:
            raise Unauthenticated("Invalid token.")
        sid = data.get("sid")
        return Claims(subject=sub, org=data.get("org"), username=None,
                      auth_time=data.get("auth_time"), acr=data.get("acr"), raw=data,
                      session_id=sid if isinstance(sid, str) else None)

    def jwks(self) -> dict[str, Any]:
        return keys.public_jwks(self.keyset)

    # Tokens whose signature verified, by their exact text: a client sends the same token with
    # every request until it expires, and checking the Ed25519 signature again was most of a
    # verification (~0.15 of ~0.2 ms). Only the signature's verdict is kept, for this key set:
    # the claims (expiry, issuer, audience) are validated on every use, and whether the person,
    # her session and her organisation still stand is read from the database per request as
    # before. A token that fails is never kept.
    _SIGNED_MAX = 4096

    def _verified(self, token: str) -> dict[str, Any]:
        cache = self._signed
        found = cache.get(token)
        if found is not None and found[0] is self.keyset:
            claims = found[1]
            try:
                _validate(claims, self.settings.issuer_url, self.settings.audience)
            except (JoseError, ValueError, KeyError, TypeError) as exc:
                raise Unauthenticated("Invalid token.") from exc
            return dict(claims)
        data = _decode(token, self.keyset, self.settings.issuer_url, self.settings.audience,
                       [keys.ALGORITHM])
        if len(cache) >= self._SIGNED_MAX:
            cache.clear()
        cache[token] = (self.keyset, dict(data))
        return data


class OIDCVerifier:
    """Validates access tokens of an external OpenID Connect provider against its JWKS.

    Mapping (docs/decisions/0020-sessions-and-oidc.md): the person is the user bound to this
    issuer and the token's `sub` (linkUserIdentity, set once by an org admin); names in the
    token (`preferred_username`, an organisation claim) mean nothing here. Her roles come from
    our own role assignments. `acr` in `SAFETY_NET_OIDC_MFA_ACR`, or any `amr` value in
    `SAFETY_NET_OIDC_MFA_AMR`, means she used a second factor (our `acr: mfa`), else `pwd`;
    `auth_time` is taken as is (absent: step-up actions are refused). The header's `typ` must
    be one of `SAFETY_NET_OIDC_TOKEN_TYPES` (RFC 9068's `at+jwt`, or `JWT`), and when
    `SAFETY_NET_OIDC_CLIENTS` is set the token's `azp` (or RFC 9068 `client_id`) must be in it.
    """

    ALGORITHMS = ["RS256", "ES256", "PS256", "EdDSA", "Ed25519"]
    REFRESH_SECONDS = 600

    def __init__(self, settings: Settings, keyset: KeySet | None = None) -> None:
        if not settings.oidc_issuer or not (settings.oidc_jwks_url or keyset):
            raise ValueError("SAFETY_NET_OIDC_ISSUER and SAFETY_NET_OIDC_JWKS_URL are required")
        self.settings = settings
        self._keyset = keyset
        self._fetched_at = time.monotonic() if keyset else 0.0

    async def _keys(self, force: bool = False) -> KeySet:
        stale = time.monotonic() - self._fetched_at > self.REFRESH_SECONDS
        if self._keyset is None or ((force or stale) and self.settings.oidc_jwks_url):
            try:
                async with httpx.AsyncClient(timeout=5) as client:
                    response = await client.get(self.settings.oidc_jwks_url)
                    response.raise_for_status()
                self._keyset = KeySet.import_key_set(response.json())
                self._fetched_at = time.monotonic()
            except (httpx.HTTPError, ValueError) as exc:
                # The issuer's key endpoint is down: keep verifying with the keys we have;
                # with none, nobody can be authenticated (never let anyone in unverified).
                if self._keyset is None:
                    raise IssuerUnavailable() from exc
        return self._keyset

    async def verify(self, token: str) -> Claims:
        audience = self.settings.oidc_audience or self.settings.audience
        try:
            data, header = _decode_with_header(token, await self._keys(),
                                               self.settings.oidc_issuer, audience,
                                               self.ALGORITHMS)
        except Unauthenticated:
            # The issuer may have rotated keys: refetch once (rate-limited by REFRESH_SECONDS).
            if time.monotonic() - self._fetched_at < 60:
                raise
            data, header = _decode_with_header(token, await self._keys(force=True),
                                               self.settings.oidc_issuer, audience,
                                               self.ALGORITHMS)
        typ = header.get("typ")
        if not isinstance(typ, str) or typ.lower() not in self.settings.oidc_token_types:
            raise Unauthenticated("Invalid token.")  # an ID token, a logout token, ...
        self._check_client(data)
        sub = data.get("sub")
        if not isinstance(sub, str) or not sub:
            raise Unauthenticated("Invalid token.")
        auth_time = data.get("auth_time")
        return Claims(subject=f"oidc:{sub}", org=None, username=None,
                      auth_time=auth_time if isinstance(auth_time, int) else None,
                      acr=self.second_factor(data), raw=data)

    def _check_client(self, data: dict[str, Any]) -> None:
        azp = data.get("azp", data.get("client_id"))
        aud = data.get("aud")
        if isinstance(aud, list) and len(aud) > 1 and azp is None:
            raise Unauthenticated("Invalid token.")  # OIDC Core 3.1.3.7: several audiences
        allowed = self.settings.oidc_clients
        if allowed and azp not in allowed:
            raise Unauthenticated("Invalid token.")

    def second_factor(self, data: dict[str, Any]) -> str:
        """Our `acr`: "mfa" when the provider says a second factor was used, else "pwd"."""
        acr = data.get("acr")
        amr = data.get("amr")
        if isinstance(acr, str) and acr in self.settings.oidc_mfa_acr:
            return "mfa"
        if isinstance(amr, list) and any(v in self.settings.oidc_mfa_amr for v in amr):
            return "mfa"
        return "pwd"


def issuer_of(token: str) -> str | None:
    """The `iss` a token claims, unverified: only to pick which verifier checks it."""
    try:
        payload = token.split(".")[1]
        data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError, UnicodeDecodeError):
        return None
    iss = data.get("iss") if isinstance(data, dict) else None
    return iss if isinstance(iss, str) else None


def _decode(token: str, keyset: KeySet, issuer: str, audience: str,
            algorithms: list[str]) -> dict[str, Any]:
    return _decode_with_header(token, keyset, issuer, audience, algorithms)[0]


def _decode_with_header(token: str, keyset: KeySet, issuer: str, audience: str,
                        algorithms: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    try:
        decoded = jwt.decode(token, keyset, algorithms=algorithms)
        _validate(decoded.claims, issuer, audience)
    except (JoseError, ValueError, KeyError, TypeError) as exc:
        raise Unauthenticated("Invalid token.") from exc
    return dict(decoded.claims), dict(decoded.header)


def _validate(claims: dict[str, Any], issuer: str, audience: str) -> None:
    """The claims every token must carry and satisfy now (raises JoseError)."""
    JWTClaimsRegistry(
        leeway=CLOCK_SKEW,
        iss={"essential": True, "value": issuer},
        aud={"essential": True, "value": audience},
        exp={"essential": True},
    ).validate(claims)
