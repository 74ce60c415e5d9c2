"""What an operator needs before the first start: `safety-net keys init` writes every key file
the service reads (and, in a read-only Kubernetes mount, could not create), and every secret
setting can come from a mounted file (`NAME_FILE`) instead of the environment."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from app.config import SECRET_SETTINGS, Settings
from app.crypto import SERVICE_KEYS
from tests.deploy_support import REPO_ROOT

CLI = str(Path(sys.executable).with_name("safety-net"))


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("SAFETY_NET_") and k not in {"DATABASE_URL", "REDIS_URL"}}
    env.update(SAFETY_NET_LOG_LEVEL="WARNING", **extra)
    return env


def _cli(*args: str, cwd: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, *args], cwd=cwd, env=_env(**extra), capture_output=True,
                          text=True, timeout=120, check=False)


def _files(root: Path) -> dict[str, tuple[int, bytes]]:
    return {str(p.relative_to(root)): (stat.S_IMODE(p.stat().st_mode), p.read_bytes())
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_keys_init_writes_every_key_once(tmp_path: Path) -> None:
    out = tmp_path / "secrets"
    first = _cli("keys", "init", "--dir", str(out), cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    files = _files(out)
    kek = {f"kek/{name}.key" for name in SERVICE_KEYS} | {"kek/kek-v1.key"}
    assert kek <= set(files)
    assert {"data/signing-keys.json", "checkpoint-keys/signing.pem"} <= set(files)
    assert [p for p in files if p.startswith("checkpoint-keys/") and p.endswith(".pub")]
    for path, (mode, content) in files.items():
        assert mode & 0o077 == 0, (path, oct(mode))  # 0600: the operator alone
        if path.startswith("kek/"):
            assert len(content) == 32
    for directory in ("data", "checkpoint-keys", "kek"):
        assert stat.S_IMODE((out / directory).stat().st_mode) == 0o700
    # The output names the Secrets to create but never a key.
    assert "kubectl" in first.stdout and "RELEASE-kek" in first.stdout
    for _, content in files.values():
        assert content.hex() not in first.stdout
    # Again: nothing replaced.
    second = _cli("keys", "init", "--dir", str(out), cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert "created" not in second.stdout and "kept" in second.stdout
    assert _files(out) == files


def test_keys_init_fills_the_configured_directories(tmp_path: Path) -> None:
    done = _cli("keys", "init", cwd=tmp_path, SAFETY_NET_DATA_DIR=str(tmp_path / "d"),
                SAFETY_NET_KEK_DIR=str(tmp_path / "k"),
                SAFETY_NET_CHECKPOINT_KEY_DIR=str(tmp_path / "c"))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "d" / "signing-keys.json").exists()
    assert (tmp_path / "c" / "signing.pem").exists()
    assert {p.name for p in (tmp_path / "k").iterdir()} == {
        "kek-v1.key", *(f"{n}.key" for n in SERVICE_KEYS)}


def test_every_service_key_the_code_uses_is_made_by_keys_init() -> None:
    """A service key missing from SERVICE_KEYS would be created on first use, which a read-only
    KEK mount refuses: the pod would fail at the first enrolment, not at start."""
    source = "\n".join(p.read_text() for p in (REPO_ROOT / "app").rglob("*.py"))
    used = set(re.findall(r'service_key\("(\w+)"\)', source))
    used |= set(re.findall(r'^(?:CONSENT_)?KEY_NAME = "(\w+)"', source, re.MULTILINE))
    assert used and used <= set(SERVICE_KEYS), used - set(SERVICE_KEYS)


@pytest.mark.parametrize("name", SECRET_SETTINGS)
def test_every_secret_setting_reads_a_file(name: str, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    for other in SECRET_SETTINGS:
        monkeypatch.delenv(other, raising=False)
        monkeypatch.delenv(f"{other}_FILE", raising=False)
    value = "postgresql+asyncpg://u:p%40ss@db/x" if "URL" in name else "czNjcjN0LWZyb20tZmlsZQ=="
    secret = tmp_path / "secret"
    secret.write_text(value + "\n")  # what `echo … > file` and most Secret tools leave
    monkeypatch.setenv(f"{name}_FILE", str(secret))
    settings = Settings.from_env()
    field = {"DATABASE_URL": "database_url", "REDIS_URL": "redis_url",
             "SAFETY_NET_KEK": "kek"}.get(name) or name.removeprefix("SAFETY_NET_").lower()
    assert getattr(settings, field) == value
    # Both at once is refused; an unreadable file is named, its content never shown.
    monkeypatch.setenv(name, "other")
    with pytest.raises(ValueError, match=f"{name} or {name}_FILE"):
        Settings.from_env()
    monkeypatch.delenv(name)
    monkeypatch.setenv(f"{name}_FILE", str(tmp_path / "missing"))
    with pytest.raises(ValueError, match=f"{name}_FILE: cannot read") as exc:
        Settings.from_env()
    assert value not in str(exc.value)


def test_the_cli_runs_with_its_database_url_in_a_file(tmp_path: Path) -> None:
    url_file = tmp_path / "database-url"
    url_file.write_text(f"sqlite+aiosqlite:///{tmp_path / 'from-file.db'}\n")
    done = _cli("migrate", cwd=tmp_path, DATABASE_URL_FILE=str(url_file),
                SAFETY_NET_DATA_DIR=str(tmp_path / "var"))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "from-file.db").exists()
    clash = _cli("migrate", cwd=tmp_path, DATABASE_URL_FILE=str(url_file), DATABASE_URL="x")
    assert clash.returncode == 2 and "DATABASE_URL or DATABASE_URL_FILE" in clash.stderr
