"""Configuration from environment variables; every default is documented in README.md."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

REPO_ROOT = Path(__file__).resolve().parent.parent
# A built wheel carries copies of the top-level migrations/, policies/ and tenants/ here (setup.py);
# a source checkout (and its editable install) has no such directory and uses the originals.
BUNDLE = Path(__file__).resolve().parent / "_bundle"


def resource_dir(name: str) -> Path:
    """`migrations`, `policies` or `tenants`: the installed package's copy, else the checkout's."""
    bundled = BUNDLE / name
    return bundled if bundled.is_dir() else REPO_ROOT / name


def source_checkout() -> bool:
    """Running from the repository (not from an installed wheel)."""
    return not BUNDLE.is_dir() and (REPO_ROOT / "pyproject.toml").is_file()


def default_data_dir() -> Path:
    """`var/` of the checkout; for an installed package, `var/` of the working directory (the
    container image sets SAFETY_NET_DATA_DIR)."""
    return REPO_ROOT / "var" if source_checkout() else Path.cwd() / "var"


# Settings whose values are secrets: each may instead be read from a file named by NAME_FILE
# (a mounted Kubernetes Secret, a Docker/Podman secret), so it need not be in the environment.
SECRET_SETTINGS = (
    "DATABASE_URL",
    "REDIS_URL",
    "SAFETY_NET_BACKGROUND_DATABASE_URL",
    "SAFETY_NET_KEK",
    "SAFETY_NET_METRICS_TOKEN",
    "SAFETY_NET_OIDC_ISSUER",
    "SAFETY_NET_OIDC_AUDIENCE",
    "SAFETY_NET_OIDC_JWKS_URL",
    "SAFETY_NET_OIDC_WEB_CLIENT_SECRET",
)


def _env(name: str, default: str) -> str:
    value = os.environ.get(name)
    if name in SECRET_SETTINGS:
        file = os.environ.get(f"{name}_FILE")
        if file:
            if value:
                raise ValueError(f"set {name} or {name}_FILE, not both")
            value = _read_secret_file(name, Path(file))
    return value if value not in (None, "") else default


def _read_secret_file(name: str, path: Path) -> str:
    """The file's text without the trailing newline most tools add (never echoes the value)."""
    try:
        return path.read_text(encoding="utf-8").rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{name}_FILE: cannot read {path} ({type(exc).__name__})") from exc


@dataclass(frozen=True)
class Settings:
    env: str = "development"
    database_url: str = ""
    # PostgreSQL: the role the service connects as (not owner, not superuser, no BYPASSRLS);
    # `safety-net migrate`, run as the schema owner, grants it what it needs.
    db_service_role: str = ""
    # PostgreSQL: the background role, the only one the database lets use the system scope
    # (log chainer, scheduler, e-mail, sign-in and admission, console commands), and how this
    # process connects as it (docs/decisions/0015-signed-tenancy.md).
    db_background_role: str = ""
    background_database_url: str = ""
    # How long a signed tenancy stays valid (seconds): longer than the longest transaction of
    # the engine that signs it, plus the clock difference between the app and the database.
    tenancy_ttl_seconds: int = 120
    background_tenancy_ttl_seconds: int = 3600
    redis_url: str = ""
    data_dir: Path = field(default_factory=default_data_dir)
    policy_dir: Path = field(default_factory=lambda: resource_dir("policies"))
    tenants_dir: Path = field(default_factory=lambda: resource_dir("tenants"))
    issuer: str = "builtin"
    issuer_url: str = "http://localhost:8000"
    audience: str = "safety-net"
    token_ttl_seconds: int = 900
    oidc_issuer: str = ""
    oidc_audience: str = ""
    oidc_jwks_url: str = ""
    # OIDC mode (docs/decisions/0020): people are bound by issuer + `sub` (linkUserIdentity);
    # these map the provider's sign-in to ours and say which tokens are for us.
    oidc_mfa_acr: tuple[str, ...] = ("mfa",)  # `acr` values meaning a second factor was used
    oidc_mfa_amr: tuple[str, ...] = ("mfa",)  # ... or any of these `amr` values
    oidc_clients: tuple[str, ...] = ()  # `azp`/`client_id` allowed; empty: any
    oidc_token_types: tuple[str, ...] = ("at+jwt", "application/at+jwt", "jwt")
    # The dashboard's own client at the provider (authorization code + PKCE, confidential):
    # staff sign in to the browser there in OIDC mode (docs/decisions/0036). Empty: no button.
    oidc_web_client_id: str = ""
    oidc_web_client_secret: str = field(default="", repr=False)
    oidc_web_resource: str = ""  # RFC 8707 resource indicator naming our API, if it needs one
    # People's sessions (docs/decisions/0020): a refresh token lives `refresh_ttl_seconds` unless
    # used (rotated) earlier; the whole session, and with it the second factor it was opened
    # with, ends `session_max_seconds` after sign-in, whatever the refreshes.
    refresh_ttl_seconds: int = 28800
    session_max_seconds: int = 43200
    log_level: str = "INFO"
    checkpoint_dir: Path | None = None
    checkpoint_key_dir: Path | None = None
    checkpoint_every: int = 1000
    checkpoint_minutes: float = 5.0
    # Seconds between automatic checkpoints at least (forced ones aside): bounds the number of
    # checkpoint files under sparse traffic, when the log goes idle after almost every request.
    checkpoint_min_interval: float = 60.0
    log_worker: bool = True
    alert_bulk_records: int = 50
    alert_denials: int = 10
    alert_denial_minutes: int = 10
    alert_break_glass: int = 3
    scheduler: bool = True
    scheduler_interval: float = 5.0
    smtp_host: str = ""
    smtp_port: int = 25
    smtp_from: str = "safety-net@localhost"
    public_url: str = "http://localhost:8000"
    kek_dir: Path | None = None
    kek: str = ""
    # --- hardening: query limits, transport, rates, step-up (docs/decisions/0006) ---
    max_depth: int = 10
    max_aliases: int = 15
    max_directives: int = 20
    max_tokens: int = 1000
    max_document_bytes: int = 32 * 1024
    max_cost: int = 5000
    max_response_bytes: int = 4 * 1024 * 1024
    max_body_bytes: int = 256 * 1024
    request_timeout_seconds: float = 10.0
    # `Retry-After` of the 503 a database or broker outage answers (docs/decisions/0016).
    outage_retry_after_seconds: int = 5
    cors_origins: tuple[str, ...] = ()
    # Rates and quotas are "amount/seconds"; "off" disables one.
    rate_client: str = "300/60"
    rate_org: str = "3000/60"
    cost_quota_client: str = "200000/3600"
    cost_quota_org: str = "1000000/3600"
    rate_login: str = "10/300"
    rate_login_ip: str = "100/300"
    rate_token: str = "20/60"  # noqa: S105 -- /oauth/token requests per client ID, not a secret
    rate_token_ip: str = "120/60"  # noqa: S105 -- and per client address
    # Requests for help without an account (`requestHelp`), per client address.
    rate_help_ip: str = "5/3600"
    redis_prefix: str = "safety-net"
    # Redis is a helper, never a dependency of the request path (docs/decisions/0017): every
    # call is bounded by this timeout (connect and read, milliseconds), and after
    # `redis_breaker_failures` failures in a row a circuit breaker skips Redis for
    # `redis_breaker_seconds` (then one probe tries it again).
    redis_timeout_ms: int = 50
    redis_breaker_failures: int = 3
    redis_breaker_seconds: float = 30.0
    # Failed sign-ins counted in the database (they hold when Redis fails open), per account and
    # per client address; over the limit, sign-in answers 429 without checking the password.
    signin_failures: str = "10/900"
    signin_failures_ip: str = "100/900"
    # Idempotency keys (`Idempotency-Key` header on mutations): how long a first answer is kept.
    idempotency_ttl_seconds: int = 86400
    # The alert outbox worker (publishes stored alerts to Redis / subscribers, sends e-mails).
    outbox_worker: bool = True
    # Serving processes: move the startup heap out of the collector's way (schema/server.py
    # freeze_heap). `safety-net serve` turns it on; tests and tools building many apps keep it off.
    gc_freeze: bool = False
    step_up_seconds: int = 900
    # Her account (docs/decisions/0027): a one-time enrolment or reset code lives this many hours
    # and locks after this many wrong tries; consent her login widens in the first days after a
    # redeemed code is held until her network (or an earlier second factor) confirms it.
    her_code_hours: int = 72
    her_code_attempts: int = 5
    her_reset_hold_days: int = 7
    step_up_acr: tuple[str, ...] = ("mfa",)
    mfa_roles: tuple[str, ...] = ("focal_point", "org_admin", "auditor")
    # --- observability: traces and metrics (docs/decisions/0010) ---
    otel_exporter: str = "none"
    trace_slow_field_ms: float = 100.0
    metrics: bool = True
    metrics_token: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def production(self) -> bool:
        return self.env == "production"

    @property
    def signing_key_path(self) -> Path:
        return self.data_dir / "signing-keys.json"

    @property
    def keks(self) -> Path:
        return self.kek_dir or self.data_dir / "kek"

    @property
    def checkpoints(self) -> Path:
        return self.checkpoint_dir or self.data_dir / "checkpoints"

    @property
    def checkpoint_keys(self) -> Path:
        return self.checkpoint_key_dir or self.data_dir / "checkpoint-keys"

    @classmethod
    def from_env(cls) -> Settings:
        data_dir = Path(_env("SAFETY_NET_DATA_DIR", str(default_data_dir())))
        env = _env("SAFETY_NET_ENV", "development")
        if env not in {"development", "production"}:
            raise ValueError("SAFETY_NET_ENV must be 'development' or 'production'")
        issuer = _env("SAFETY_NET_ISSUER", "builtin")
        if issuer not in {"builtin", "oidc"}:
            raise ValueError("SAFETY_NET_ISSUER must be 'builtin' or 'oidc'")
        return cls(
            env=env,
            database_url=_env("DATABASE_URL", f"sqlite+aiosqlite:///{data_dir / 'safety-net.db'}"),
            db_service_role=_env("SAFETY_NET_DB_SERVICE_ROLE", ""),
            db_background_role=_env("SAFETY_NET_DB_BACKGROUND_ROLE", ""),
            background_database_url=_env("SAFETY_NET_BACKGROUND_DATABASE_URL", ""),
            tenancy_ttl_seconds=_positive("SAFETY_NET_TENANCY_TTL", "120"),
            background_tenancy_ttl_seconds=_positive("SAFETY_NET_BACKGROUND_TENANCY_TTL", "3600"),
            redis_url=_env("REDIS_URL", ""),
            data_dir=data_dir,
            policy_dir=Path(_env("SAFETY_NET_POLICY_DIR", str(resource_dir("policies")))),
            tenants_dir=Path(_env("SAFETY_NET_TENANTS_DIR", str(resource_dir("tenants")))),
            issuer=issuer,
            issuer_url=_env("SAFETY_NET_ISSUER_URL", "http://localhost:8000"),
            audience=_env("SAFETY_NET_AUDIENCE", "safety-net"),
            token_ttl_seconds=_number(int, "SAFETY_NET_TOKEN_TTL", "900"),
            oidc_issuer=_env("SAFETY_NET_OIDC_ISSUER", ""),
            oidc_audience=_env("SAFETY_NET_OIDC_AUDIENCE", ""),
            oidc_jwks_url=_env("SAFETY_NET_OIDC_JWKS_URL", ""),
            oidc_mfa_acr=_list(_env("SAFETY_NET_OIDC_MFA_ACR", "mfa")),
            oidc_mfa_amr=_list(_env("SAFETY_NET_OIDC_MFA_AMR", "mfa")),
            oidc_clients=_list(_env("SAFETY_NET_OIDC_CLIENTS", "")),
            oidc_token_types=tuple(t.lower() for t in _list(
                _env("SAFETY_NET_OIDC_TOKEN_TYPES", "at+jwt,application/at+jwt,jwt"))),
            oidc_web_client_id=_env("SAFETY_NET_OIDC_WEB_CLIENT_ID", ""),
            oidc_web_client_secret=_env("SAFETY_NET_OIDC_WEB_CLIENT_SECRET", ""),
            oidc_web_resource=_env("SAFETY_NET_OIDC_WEB_RESOURCE", ""),
            refresh_ttl_seconds=_positive("SAFETY_NET_REFRESH_TTL", "28800"),
            session_max_seconds=_positive("SAFETY_NET_SESSION_MAX", "43200"),
            log_level=_env("SAFETY_NET_LOG_LEVEL", "INFO"),
            checkpoint_dir=Path(_env("SAFETY_NET_CHECKPOINT_DIR", str(data_dir / "checkpoints"))),
            checkpoint_key_dir=Path(_env("SAFETY_NET_CHECKPOINT_KEY_DIR",
                                         str(data_dir / "checkpoint-keys"))),
            checkpoint_every=_number(int, "SAFETY_NET_CHECKPOINT_EVERY", "1000"),
            checkpoint_minutes=_number(float, "SAFETY_NET_CHECKPOINT_MINUTES", "5"),
            checkpoint_min_interval=_non_negative("SAFETY_NET_CHECKPOINT_MIN_INTERVAL", "60"),
            log_worker=_env("SAFETY_NET_LOG_WORKER", "on") != "off",
            alert_bulk_records=_number(int, "SAFETY_NET_ALERT_BULK_RECORDS", "50"),
            alert_denials=_number(int, "SAFETY_NET_ALERT_DENIALS", "10"),
            alert_denial_minutes=_number(int, "SAFETY_NET_ALERT_DENIAL_MINUTES", "10"),
            alert_break_glass=_number(int, "SAFETY_NET_ALERT_BREAK_GLASS", "3"),
            scheduler=_env("SAFETY_NET_SCHEDULER", "on") != "off",
            scheduler_interval=_number(float, "SAFETY_NET_SCHEDULER_INTERVAL", "5"),
            smtp_host=_env("SAFETY_NET_SMTP_HOST", ""),
            smtp_port=_number(int, "SAFETY_NET_SMTP_PORT", "25"),
            smtp_from=_env("SAFETY_NET_SMTP_FROM", "safety-net@localhost"),
            public_url=_env("SAFETY_NET_PUBLIC_URL", _env("SAFETY_NET_ISSUER_URL",
                                                          "http://localhost:8000")),
            kek_dir=Path(_env("SAFETY_NET_KEK_DIR", str(data_dir / "kek"))),
            kek=_env("SAFETY_NET_KEK", ""),
            **_hardening_from_env(),
            **_observability_from_env(),
        )


def _hardening_from_env() -> dict[str, Any]:
    """Query limits, transport, rates and step-up (README "Hardening")."""
    return {
        "max_depth": _number(int, "SAFETY_NET_MAX_DEPTH", "10"),
        "max_aliases": _number(int, "SAFETY_NET_MAX_ALIASES", "15"),
        "max_directives": _number(int, "SAFETY_NET_MAX_DIRECTIVES", "20"),
        "max_tokens": _number(int, "SAFETY_NET_MAX_TOKENS", "1000"),
        "max_document_bytes": _number(int, "SAFETY_NET_MAX_DOCUMENT_BYTES", str(32 * 1024)),
        "max_cost": _number(int, "SAFETY_NET_MAX_COST", "5000"),
        "max_response_bytes": _number(int, "SAFETY_NET_MAX_RESPONSE_BYTES", str(4 * 1024 * 1024)),
        "max_body_bytes": _number(int, "SAFETY_NET_MAX_BODY_BYTES", str(256 * 1024)),
        "request_timeout_seconds": _number(float, "SAFETY_NET_REQUEST_TIMEOUT", "10"),
        "outage_retry_after_seconds": _number(int, "SAFETY_NET_OUTAGE_RETRY_AFTER", "5"),
        "cors_origins": _list(_env("SAFETY_NET_CORS_ORIGINS", "")),
        "rate_client": _rate("SAFETY_NET_RATE_CLIENT", "300/60"),
        "rate_org": _rate("SAFETY_NET_RATE_ORG", "3000/60"),
        "cost_quota_client": _rate("SAFETY_NET_COST_QUOTA_CLIENT", "200000/3600"),
        "cost_quota_org": _rate("SAFETY_NET_COST_QUOTA_ORG", "1000000/3600"),
        "rate_login": _rate("SAFETY_NET_RATE_LOGIN", "10/300"),
        "rate_login_ip": _rate("SAFETY_NET_RATE_LOGIN_IP", "100/300"),
        "rate_token": _rate("SAFETY_NET_RATE_TOKEN", "20/60"),
        "rate_token_ip": _rate("SAFETY_NET_RATE_TOKEN_IP", "120/60"),
        "rate_help_ip": _rate("SAFETY_NET_RATE_HELP_IP", "5/3600"),
        "redis_prefix": _env("SAFETY_NET_REDIS_PREFIX", "safety-net"),
        "redis_timeout_ms": _positive("SAFETY_NET_REDIS_TIMEOUT_MS", "50"),
        "redis_breaker_failures": _positive("SAFETY_NET_REDIS_BREAKER_FAILURES", "3"),
        "redis_breaker_seconds": _non_negative("SAFETY_NET_REDIS_BREAKER_SECONDS", "30"),
        "signin_failures": _rate("SAFETY_NET_SIGNIN_FAILURES", "10/900"),
        "signin_failures_ip": _rate("SAFETY_NET_SIGNIN_FAILURES_IP", "100/900"),
        "idempotency_ttl_seconds": _positive("SAFETY_NET_IDEMPOTENCY_TTL", "86400"),
        "outbox_worker": _env("SAFETY_NET_OUTBOX_WORKER", "on") != "off",
        "gc_freeze": _env("SAFETY_NET_GC_FREEZE", "off") == "on",
        "step_up_seconds": _number(int, "SAFETY_NET_STEP_UP_SECONDS", "900"),
        "her_code_hours": _positive("SAFETY_NET_HER_CODE_HOURS", "72"),
        "her_code_attempts": _positive("SAFETY_NET_HER_CODE_ATTEMPTS", "5"),
        "her_reset_hold_days": _number(int, "SAFETY_NET_HER_RESET_HOLD_DAYS", "7"),
        "step_up_acr": _list(_env("SAFETY_NET_STEP_UP_ACR", "mfa")),
        "mfa_roles": _list(_env("SAFETY_NET_MFA_ROLES", "focal_point,org_admin,auditor")),
    }


OTEL_EXPORTERS = ("none", "console", "otlp", "memory")


def _observability_from_env() -> dict[str, Any]:
    """Traces and metrics (README "Observability")."""
    exporter = _env("SAFETY_NET_OTEL_EXPORTER", "none").strip().lower()
    if exporter not in OTEL_EXPORTERS:
        raise ValueError("SAFETY_NET_OTEL_EXPORTER must be one of " + ", ".join(OTEL_EXPORTERS))
    return {
        "otel_exporter": exporter,
        "trace_slow_field_ms": _number(float, "SAFETY_NET_TRACE_SLOW_FIELD_MS", "100"),
        "metrics": _env("SAFETY_NET_METRICS", "on") != "off",
        "metrics_token": _env("SAFETY_NET_METRICS_TOKEN", ""),
    }


_N = TypeVar("_N", int, float)


def _number(kind: type[_N], name: str, default: str) -> _N:
    """A number from the environment; a ValueError that names the variable otherwise."""
    raw = _env(name, default)
    try:
        return kind(raw)
    except ValueError:
        raise ValueError(f"{name} must be {'a whole number' if kind is int else 'a number'}, "
                         f"not {raw!r}") from None


def _positive(name: str, default: str) -> int:
    value = _number(int, name, default)
    if value < 1:
        raise ValueError(f"{name} must be a positive number of seconds")
    return value


def _non_negative(name: str, default: str) -> float:
    try:
        value = float(_env(name, default))
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):
        raise ValueError(f"{name} must be a number of seconds, 0 or more")
    return value


def _list(value: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in value.split(",") if v.strip())


def parse_rate(value: str) -> tuple[int, int] | None:
    """'amount/seconds' as (amount, seconds); 'off' as None."""
    if value.strip().lower() == "off":
        return None
    amount, _, seconds = value.partition("/")
    parsed = int(amount), int(seconds or "1")
    if parsed[0] < 1 or parsed[1] < 1:
        raise ValueError(f"a rate is amount/seconds, both at least 1, not {value!r}")
    return parsed


def _rate(name: str, default: str) -> str:
    value = _env(name, default)
    try:
        parse_rate(value)
    except ValueError as exc:
        raise ValueError(f"{name} must be 'amount/seconds' or 'off'") from exc
    return value
