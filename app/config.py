"""Configuration from environment variables; every default is documented in README.md."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def _env(name: str, default: str) -> str:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


@dataclass(frozen=True)
class Settings:
    env: str = "development"
    database_url: str = ""
    redis_url: str = ""
    data_dir: Path = REPO_ROOT / "var"
    policy_dir: Path = REPO_ROOT / "policies"
    tenants_dir: Path = REPO_ROOT / "tenants"
    issuer: str = "builtin"
    issuer_url: str = "http://localhost:8000"
    audience: str = "safety-net"
    token_ttl_seconds: int = 900
    oidc_issuer: str = ""
    oidc_audience: str = ""
    oidc_jwks_url: str = ""
    oidc_org_claim: str = "safety_net_org"
    oidc_username_claim: str = "preferred_username"
    log_level: str = "INFO"
    checkpoint_dir: Path | None = None
    checkpoint_key_dir: Path | None = None
    checkpoint_every: int = 1000
    checkpoint_minutes: float = 5.0
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
        data_dir = Path(_env("SAFETY_NET_DATA_DIR", str(REPO_ROOT / "var")))
        env = _env("SAFETY_NET_ENV", "development")
        if env not in {"development", "production"}:
            raise ValueError("SAFETY_NET_ENV must be 'development' or 'production'")
        issuer = _env("SAFETY_NET_ISSUER", "builtin")
        if issuer not in {"builtin", "oidc"}:
            raise ValueError("SAFETY_NET_ISSUER must be 'builtin' or 'oidc'")
        return cls(
            env=env,
            database_url=_env("DATABASE_URL", f"sqlite+aiosqlite:///{data_dir / 'safety-net.db'}"),
            redis_url=_env("REDIS_URL", ""),
            data_dir=data_dir,
            policy_dir=Path(_env("SAFETY_NET_POLICY_DIR", str(REPO_ROOT / "policies"))),
            tenants_dir=Path(_env("SAFETY_NET_TENANTS_DIR", str(REPO_ROOT / "tenants"))),
            issuer=issuer,
            issuer_url=_env("SAFETY_NET_ISSUER_URL", "http://localhost:8000"),
            audience=_env("SAFETY_NET_AUDIENCE", "safety-net"),
            token_ttl_seconds=int(_env("SAFETY_NET_TOKEN_TTL", "900")),
            oidc_issuer=_env("SAFETY_NET_OIDC_ISSUER", ""),
            oidc_audience=_env("SAFETY_NET_OIDC_AUDIENCE", ""),
            oidc_jwks_url=_env("SAFETY_NET_OIDC_JWKS_URL", ""),
            oidc_org_claim=_env("SAFETY_NET_OIDC_ORG_CLAIM", "safety_net_org"),
            oidc_username_claim=_env("SAFETY_NET_OIDC_USERNAME_CLAIM", "preferred_username"),
            log_level=_env("SAFETY_NET_LOG_LEVEL", "INFO"),
            checkpoint_dir=Path(_env("SAFETY_NET_CHECKPOINT_DIR", str(data_dir / "checkpoints"))),
            checkpoint_key_dir=Path(_env("SAFETY_NET_CHECKPOINT_KEY_DIR",
                                         str(data_dir / "checkpoint-keys"))),
            checkpoint_every=int(_env("SAFETY_NET_CHECKPOINT_EVERY", "1000")),
            checkpoint_minutes=float(_env("SAFETY_NET_CHECKPOINT_MINUTES", "5")),
            log_worker=_env("SAFETY_NET_LOG_WORKER", "on") != "off",
            alert_bulk_records=int(_env("SAFETY_NET_ALERT_BULK_RECORDS", "50")),
            alert_denials=int(_env("SAFETY_NET_ALERT_DENIALS", "10")),
            alert_denial_minutes=int(_env("SAFETY_NET_ALERT_DENIAL_MINUTES", "10")),
            alert_break_glass=int(_env("SAFETY_NET_ALERT_BREAK_GLASS", "3")),
            scheduler=_env("SAFETY_NET_SCHEDULER", "on") != "off",
            scheduler_interval=float(_env("SAFETY_NET_SCHEDULER_INTERVAL", "5")),
            smtp_host=_env("SAFETY_NET_SMTP_HOST", ""),
            smtp_port=int(_env("SAFETY_NET_SMTP_PORT", "25")),
            smtp_from=_env("SAFETY_NET_SMTP_FROM", "safety-net@localhost"),
            public_url=_env("SAFETY_NET_PUBLIC_URL", _env("SAFETY_NET_ISSUER_URL",
                                                          "http://localhost:8000")),
            kek_dir=Path(_env("SAFETY_NET_KEK_DIR", str(data_dir / "kek"))),
            kek=_env("SAFETY_NET_KEK", ""),
        )
