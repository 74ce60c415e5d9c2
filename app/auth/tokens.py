"""Issuing and verifying access tokens (JWT, joserfc): built-in issuer or external OIDC."""

from __future__ import annotations

import secrets
import time
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


@dataclass(frozen=True)
class Claims:
    """What the edge needs from a verified token."""

    subject: str  # "user:<uuid>", "client:<uuid>", "peacebuilder:<uuid>" (built-in issuer)
    org: str | None  # organisation id (built-in) or slug (OIDC mapping)
    username: str | None  # OIDC only: mapped to a user of `org`
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
        data = _decode(token, self.keyset, self.settings.issuer_url, self.settings.audience,
                       [keys.ALGORITHM])
        sub = data.get("sub")
        if not isinstance(sub, str) or ":" not in sub:
            raise Unauthenticated("Invalid token.")
        sid = data.get("sid")
        return Claims(subject=sub, org=data.get("org"), username=None,
                      auth_time=data.get("auth_time"), acr=data.get("acr"), raw=data,
                      session_id=sid if isinstance(sid, str) else None)

    def jwks(self) -> dict[str, Any]:
        return keys.public_jwks(self.keyset)


class OIDCVerifier:
    """Validates tokens of an external OpenID Connect issuer against its published JWKS.

    Claim mapping (documented in README): `SAFETY_NET_OIDC_ORG_CLAIM` names the organisation
    slug, `SAFETY_NET_OIDC_USERNAME_CLAIM` the username in that organisation; the user must
    exist and be active here, and roles come from our own role assignments, not the token.
    """

    ALGORITHMS = ["RS256", "ES256", "PS256", "Ed25519"]
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
            data = _decode(token, await self._keys(), self.settings.oidc_issuer, audience,
                           self.ALGORITHMS)
        except Unauthenticated:
            # The issuer may have rotated keys: refetch once (rate-limited by REFRESH_SECONDS).
            if time.monotonic() - self._fetched_at < 60:
                raise
            data = _decode(token, await self._keys(force=True), self.settings.oidc_issuer,
                           audience, self.ALGORITHMS)
        org = data.get(self.settings.oidc_org_claim)
        username = data.get(self.settings.oidc_username_claim)
        if not isinstance(org, str) or not isinstance(username, str):
            raise Unauthenticated("Invalid token.")
        return Claims(subject=f"oidc:{data.get('sub')}", org=org, username=username,
                      auth_time=data.get("auth_time"), acr=data.get("acr"), raw=data)


def _decode(token: str, keyset: KeySet, issuer: str, audience: str,
            algorithms: list[str]) -> dict[str, Any]:
    try:
        decoded = jwt.decode(token, keyset, algorithms=algorithms)
        JWTClaimsRegistry(
            leeway=CLOCK_SKEW,
            iss={"essential": True, "value": issuer},
            aud={"essential": True, "value": audience},
            exp={"essential": True},
        ).validate(decoded.claims)
    except (JoseError, ValueError, KeyError, TypeError) as exc:
        raise Unauthenticated("Invalid token.") from exc
    return dict(decoded.claims)
