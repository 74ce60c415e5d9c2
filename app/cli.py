"""The `safety-net` command: serve, migrate, tenants apply, demo, token, users, audit, keys."""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import socket
import sys
import time
import uuid
from importlib import metadata
from pathlib import Path

from app import tenancy
from app.access.principal import SYSTEM
from app.config import Settings
from app.crypto import KeyEncryptionKeys
from app.runtime import Runtime, context_for
from app.storage import (
    grant_service_role,
    install_wall,
    migration_status,
    schema_is_usable,
    service_role_problems,
    upgrade,
    wall_problems,
)
from app.tenants import schema as tenant_schema
from app.tenants import service as tenant_service


def version() -> str:
    try:
        return metadata.version("safety-net")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    """Run one command. What goes wrong outside the program (a database that does not answer, a
    missing file, bad configuration) is one line on stderr and a non-zero exit, no traceback."""
    try:
        return _main(argv)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        line, code = failure(exc)
        if os.environ.get("SAFETY_NET_DEBUG") == "1":
            raise
        print(f"error: {line}", file=sys.stderr)
        return code


def failure(exc: BaseException) -> tuple[str, int]:
    """One line saying what went wrong, and the exit code (2: configuration, 1: the rest)."""
    from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, OperationalError

    chain = [exc]
    while chain[-1].__cause__ is not None or chain[-1].__context__ is not None:
        nxt = chain[-1].__cause__ or chain[-1].__context__
        assert nxt is not None
        if nxt in chain:
            break
        chain.append(nxt)
    for e in chain:
        if isinstance(e, FileNotFoundError):
            return f"no such file or directory: {e.filename}", 1
        if isinstance(e, PermissionError):
            return f"permission denied: {e.filename}", 1
        if isinstance(e, ArgumentError | NoSuchModuleError):
            return ("bad configuration: DATABASE_URL is not a database URL this service can use "
                    f"({type(e).__name__})"), 2
        if re.search(r"no such table|relation \S+ does not exist|UndefinedTable",
                     f"{type(e).__name__}: {e}"):
            return ("the database is not migrated: run `safety-net migrate` (or `safety-net "
                    "demo`) first"), 1
        if isinstance(e, OperationalError | ConnectionError | TimeoutError | socket.gaierror):
            return f"cannot reach the database: {_first_line(e)}", 1
        if isinstance(e, DBAPIError) or type(e).__module__.startswith("asyncpg"):
            return f"the database refused: {_first_line(e)}", 1
        if isinstance(e, OSError):
            return f"cannot reach the database: {_first_line(e)}", 1
    return (f"unexpected {type(exc).__name__}: {_first_line(exc)} (SAFETY_NET_DEBUG=1 shows the "
            "traceback)"), 1


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    line = text[0] if text else type(exc).__name__
    # A URL with a password must not reach the terminal (or a CI log).
    return re.sub(r"://([^:/@\s]+):[^@\s]+@", r"://\1:***@", line)[:300]


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="safety-net", description=__doc__)
    parser.add_argument("--version", action="version", version=f"safety-net {version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the API server (uvicorn)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    sub.add_parser("migrate", help="bring the database schema to the latest migration")
    tenants = sub.add_parser("tenants", help="organisations declared as YAML")
    tsub = tenants.add_subparsers(dest="tenants_command", required=True)
    apply = tsub.add_parser("apply", help="create/update organisations from a file or directory")
    apply.add_argument("path", type=Path)
    sub.add_parser("demo", help="migrate, apply tenants/ and load the demo data (idempotent)")
    token = sub.add_parser("token", help="print a signed access token (built-in issuer)")
    token.add_argument("--org", help="organisation slug (staff and machine clients)")
    who = token.add_mutually_exclusive_group(required=True)
    who.add_argument("--user", help="username in the organisation")
    who.add_argument("--client", help="machine client ID of the organisation")
    who.add_argument("--peacebuilder", help="her login (the demo uses her pseudonym)")
    users = sub.add_parser("users", help="people of an organisation (operator tasks)")
    usub = users.add_subparsers(dest="users_command", required=True)
    code = usub.add_parser(
        "enrolment-code",
        help="issue a one-time code with which a person enrols her first second factor "
             "(bootstrap: for the first people of an organisation, where no two people can yet)")
    code.add_argument("--org", required=True, help="organisation slug")
    code.add_argument("--user", required=True, help="username in the organisation")
    code.add_argument("--reset-factor", action="store_true",
                      help="remove her current second factor first (a lost phone where no "
                           "administrator can reset it)")
    link = usub.add_parser(
        "link-identity",
        help="OIDC mode: bind a person to her account at the identity provider (its `sub`); "
             "bootstrap for an organisation's first admin, later linkUserIdentity")
    link.add_argument("--org", required=True, help="organisation slug")
    link.add_argument("--user", required=True, help="username in the organisation")
    link.add_argument("--subject", required=True, help="her account's `sub` at the provider")
    her = sub.add_parser("her", help="her login (operator tasks for pilots; logged, she and "
                                     "her network are told)")
    hsub = her.add_subparsers(dest="her_command", required=True)
    for name, text in (("issue-code", "print a one-time enrolment or reset code for her login "
                                      "(shown once; she redeems it at POST /auth/redeem-code)"),
                       ("suspend", "suspend her login at once (until reinstated)"),
                       ("reinstate", "lift the suspension of her login")):
        one = hsub.add_parser(name, help=text)
        one.add_argument("--peacebuilder", required=True, help="her record's UUID")
        if name == "issue-code":
            one.add_argument("--reset-factor", action="store_true",
                             help="a reset that also removes her TOTP factor (a lost phone)")
    audit = sub.add_parser("audit", help="the tamper-evident access log")
    asub = audit.add_subparsers(dest="audit_command", required=True)
    verify = asub.add_parser("verify", help="check every entry, link and signed checkpoint")
    verify.add_argument("--checkpoints", type=Path, help="checkpoint directory")
    verify.add_argument("--keys", type=Path, help="directory of trusted checkpoint public keys")
    verify.add_argument("--state", type=Path,
                        help="file remembering the last accepted checkpoint "
                             "(default: DATA_DIR/audit-verify-state.json)")
    verify.add_argument("--no-progress", action="store_true")
    vexp = asub.add_parser("verify-export", help="check an exported JSON Lines file offline")
    vexp.add_argument("file", type=Path)
    vexp.add_argument("--keys", type=Path, help="directory of trusted checkpoint public keys")
    asub.add_parser("chain", help="chain pending entries and sign a checkpoint now")
    asub.add_parser("rotate-key", help="new checkpoint signing key (old public keys are kept)")
    keys = sub.add_parser("keys", help="key-encryption keys of her sealed data")
    ksub = keys.add_subparsers(dest="keys_command", required=True)
    rotate = ksub.add_parser("rotate", help="new KEK version and re-wrap every data key under it")
    rotate.add_argument("--stage", action="store_true",
                        help="only create the new version (give it to every replica first), "
                             "then run `keys rewrap`")
    ksub.add_parser("rewrap", help="re-wrap every data key under the newest KEK version")
    init = ksub.add_parser(
        "init", help="create every key a deployment needs (token signing keys, checkpoint key, "
                     "KEK and service keys), files 0600; existing ones are kept")
    init.add_argument("--dir", type=Path,
                      help="write DIR/data, DIR/checkpoint-keys and DIR/kek (one Kubernetes "
                           "Secret each) instead of the configured directories")
    destroy = ksub.add_parser("destroy", help="destroy an old KEK version (after the backup "
                                              "retention period; refused while still in use)")
    destroy.add_argument("--version", type=int, required=True)
    args = parser.parse_args(argv)

    try:
        settings = Settings.from_env()
    except ValueError as exc:
        print(f"error: bad configuration: {exc}", file=sys.stderr)
        return 2
    if args.command == "serve":
        return _serve(settings, args.host, args.port, args.workers)
    # Everything else is the operator at the console: the database's system scope.
    tenancy.declare(tenancy.SYSTEM)
    if args.command == "migrate":
        try:
            _migrate(settings)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print("database migrated to the latest revision")
        return 0
    if args.command == "tenants":
        return asyncio.run(_tenants_apply(settings, args.path))
    if args.command == "demo":
        return _demo(settings)
    if args.command == "keys" and args.keys_command == "init":
        return _keys_init(settings, args.dir)
    if args.command == "keys":
        return asyncio.run(_keys(settings, args))
    if args.command == "audit":
        return asyncio.run(_audit(settings, args))
    if args.command == "users" and args.users_command == "link-identity":
        return asyncio.run(link_identity(settings, args.org, args.user, args.subject))
    if args.command == "her":
        return asyncio.run(her_login(settings, args.her_command, args.peacebuilder,
                                     reset_factor=getattr(args, "reset_factor", False)))
    if args.command == "users":
        return asyncio.run(_enrolment_code(settings, args.org, args.user, args.reset_factor))
    if args.command == "token":
        if args.peacebuilder:
            return asyncio.run(_peacebuilder_token(settings, args.peacebuilder))
        if not args.org:
            parser.error("--org is required with --user or --client")
        return asyncio.run(_token(settings, args.org, args.user, args.client))
    return 2


def _migrate(settings: Settings) -> None:
    """Upgrade the schema, grant the service and background roles their data rights, and install
    the database's copies of the keys that sign tenancies and consent rows (as the owner)."""
    upgrade(settings.database_url)
    for role in dict.fromkeys((settings.db_service_role, settings.db_background_role)):
        if role:
            asyncio.run(grant_service_role(settings.database_url, role))
    keys = KeyEncryptionKeys(settings.keks, settings.kek)
    for line in asyncio.run(install_wall(settings.database_url, keys, settings.db_background_role)):
        print(f"  {line}")


def _serve(settings: Settings, host: str, port: int, workers: int) -> int:
    import uvicorn

    current, head, problems = asyncio.run(_preflight(Runtime.create(settings)))
    if not schema_is_usable(current, head):
        print(f"error: the database is not migrated (at {current or 'empty'}, code needs "
              f"{head}). Run `safety-net migrate` (or `safety-net demo`) first.", file=sys.stderr)
        return 1
    for problem in problems:
        print(f"{'error' if settings.production else 'warning'}: the service {problem}; see "
              "docs/decisions/0012-row-level-security.md and 0015-signed-tenancy.md",
              file=sys.stderr)
    if problems and settings.production:
        return 1
    # Each worker's app builds its settings from the environment: serving processes freeze
    # their startup heap (schema/server.py freeze_heap) unless told otherwise.
    os.environ.setdefault("SAFETY_NET_GC_FREEZE", "on")
    uvicorn.run("schema.server:create_app", factory=True, host=host, port=port,
                workers=workers, log_config=None, access_log=False, ws="websockets-sansio",
                use_colors=False)
    return 0


def _keys_init(settings: Settings, root: Path | None) -> int:
    """Every key file the service reads and, in a read-only mount, cannot create itself. Nothing
    existing is replaced (rotation has its own commands); no key material is printed."""
    from app.audit import checkpoints
    from app.auth import keys as token_keys
    from app.crypto import SERVICE_KEYS

    data = root / "data" if root else settings.data_dir
    checkpoint_keys = root / "checkpoint-keys" if root else settings.checkpoint_keys
    kek_dir = root / "kek" if root else settings.keks
    if settings.kek and not root:
        print("error: SAFETY_NET_KEK is set (the KEK comes from the environment): unset it, or "
              "give --dir", file=sys.stderr)
        return 2
    old_umask = os.umask(0o077)
    try:
        for directory in (data, checkpoint_keys, kek_dir):
            directory.mkdir(parents=True, exist_ok=True)
        made: list[str] = []
        kept: list[str] = []
        signing = settings.signing_key_path if not root else data / "signing-keys.json"
        (kept if signing.exists() else made).append(str(signing))
        token_keys.load_or_create(signing)
        private = checkpoint_keys / "signing.pem"
        (kept if private.exists() else made).append(str(private))
        checkpoints.Signer(checkpoint_keys)
        keks = KeyEncryptionKeys(kek_dir)
        if keks.versions():
            kept.append(f"{kek_dir}/kek-v{keks.current}.key")
        else:
            made.append(f"{kek_dir}/kek-v{keks.rotate()}.key")
        for name in SERVICE_KEYS:
            path = kek_dir / f"{name}.key"
            (kept if path.exists() else made).append(str(path))
            keks.service_key(name)
    finally:
        os.umask(old_umask)
    for name in made:
        print(f"  created {name}")
    for name in kept:
        print(f"  kept    {name}")
    if root:
        print("one Secret each (names the chart expects by default; RELEASE is the release's "
              "full name):\n"
              f"  kubectl -n NS create secret generic RELEASE-keys --from-file={data}/\n"
              f"  kubectl -n NS create secret generic RELEASE-checkpoint-keys "
              f"--from-file={checkpoint_keys}/\n"
              f"  kubectl -n NS create secret generic RELEASE-kek --from-file={kek_dir}/\n"
              "keep an offline copy of kek/ (losing it makes her sealed data unreadable)")
    return 0


async def _keys(settings: Settings, args: argparse.Namespace) -> int:
    from sqlalchemy import func, select

    from app.her import keys
    from app.tables.peacebuilders import DataKey

    runtime = Runtime.create(settings)
    try:
        keks = runtime.db.keys
        if args.keys_command in ("rotate", "rewrap"):
            if args.keys_command == "rotate":
                version = keks.rotate()
                if args.stage:
                    print(f"KEK version {version} created; give it to every replica, then run "
                          "`safety-net keys rewrap`")
                    return 0
            async with runtime.db.transaction() as session:
                n = await keys.rewrap_all(session, keks)
            print(f"KEK version {keks.current} is current; {n} data keys re-wrapped")
            return 0
        async with runtime.db.transaction() as session:
            in_use = await session.scalar(select(func.count()).select_from(DataKey).where(
                DataKey.kek_version == args.version))
        if in_use:
            print(f"error: {in_use} data keys are still wrapped with version {args.version}; "
                  "run `safety-net keys rotate` first", file=sys.stderr)
            return 1
        keks.destroy(args.version)
        print(f"KEK version {args.version} destroyed: backups that depend on it are unreadable")
        return 0
    finally:
        await runtime.close()


async def _audit(settings: Settings, args: argparse.Namespace) -> int:
    from app.audit import checkpoints, verify
    from app.audit.worker import LogWorker

    if args.audit_command == "verify-export":
        report = verify.verify_export(args.file, args.keys or settings.checkpoint_keys)
        if report.ok:
            print(f"OK: {report.entries} entries verify against the checkpoint at size "
                  f"{report.accepted.size if report.accepted else '?'}")
            return 0
        for problem in report.problems:
            print(f"  - {problem}")
        return 1
    if args.audit_command == "rotate-key":
        kid = checkpoints.Signer(settings.checkpoint_keys).rotate()
        print(f"new checkpoint signing key {kid}; old public keys kept in {settings.checkpoint_keys}")
        return 0
    runtime = Runtime.create(settings)
    try:
        if args.audit_command == "chain":
            worker = LogWorker(settings, runtime.db, runtime.clock)
            from app.audit.chain import chain_all

            n = await chain_all(runtime.db)
            cp = await worker.maybe_checkpoint(force=True)
            print(f"chained {n} entries" + (f"; checkpoint at size {cp.size}" if cp else ""))
            return 0
        started = time.monotonic()

        def progress(done: int, total: int) -> None:
            if (not args.no_progress and sys.stderr.isatty()) or os.environ.get("SAFETY_NET_PROGRESS"):
                width = 30
                filled = int(width * done / total) if total else width
                print(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total}", end="",
                      file=sys.stderr, flush=True)

        report = await verify.verify(
            runtime.db, args.checkpoints or settings.checkpoints, args.keys or settings.checkpoint_keys,
            args.state or settings.data_dir / "audit-verify-state.json", progress)
        elapsed = time.monotonic() - started
        print(file=sys.stderr)
        print(f"entries: {report.entries} chained, {report.pending} pending; "
              f"checkpoints: {report.checkpoints} verified"
              + (f" of {report.checkpoint_files} files" if report.checkpoint_files != report.checkpoints
                 else "") + f"; {elapsed:.1f}s "
              f"({report.entries / elapsed if elapsed else 0:,.0f} entries/s)")
        if report.ok:
            accepted = report.accepted
            print("OK: every entry, link and checkpoint verifies"
                  + (f"; accepted checkpoint at size {accepted.size}" if accepted else
                     " (no checkpoint yet)"))
            return 0
        print(f"FAILED: first bad entry {report.first_bad_seq}" if report.first_bad_seq else "FAILED")
        for problem in report.problems:
            print(f"  - {problem}")
        return 1
    finally:
        await runtime.close()


async def _preflight(runtime: Runtime) -> tuple[str | None, str | None, list[str]]:
    """Before serving: the schema's revision (and the code's), and why the service's own
    connections could bypass row-level security or the signed tenancy would not work (empty when
    neither)."""
    try:
        current, head = await migration_status(runtime.db)
        if not schema_is_usable(current, head):
            return current, head, []
        problems = await service_role_problems(runtime.db) + await wall_problems(runtime.db)
        return current, head, problems
    finally:
        await runtime.close()


async def _tenants_apply(settings: Settings, path: Path,
                         runtime: Runtime | None = None) -> int:
    try:
        specs = tenant_schema.load_dir(path)
    except tenant_schema.TenantFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    own = runtime is None
    runtime = runtime or Runtime.create(settings)
    try:
        async with runtime.db.transaction() as session:
            ctx = context_for(runtime, session, SYSTEM, request_id=f"cli-{uuid.uuid4().hex}")
            try:
                report = await tenant_service.apply(ctx, specs)
            except (tenant_schema.TenantFileError, ValueError) as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 2
        for line in report.changes:
            print(f"  {line}")
        for line in report.kept:
            print(f"  kept: {line}")
        for line in report.warnings:
            print(f"  warning: {line}", file=sys.stderr)
        for client_id, secret in report.new_client_secrets.items():
            print(f"  client secret for {client_id} (shown once): {secret}")
        print("tenants applied" + ("" if report.changed else ": nothing to change"))
        runtime.extras["client_secrets"] = report.new_client_secrets
        return 0
    finally:
        if own:
            await runtime.close()


def _demo(settings: Settings) -> int:
    _migrate(settings)
    print("database migrated")

    async def run() -> int:
        from app import demo

        runtime = Runtime.create(settings)
        try:
            code = await _tenants_apply(settings, settings.tenants_dir, runtime)
            if code:
                return code
            for line in await demo.load(runtime):
                print(f"  {line}")
            path = await demo.ensure_credentials(runtime,
                                                 runtime.extras.get("client_secrets", {}))
            print(f"demo data loaded; demo passwords and client secrets in {path}")
            return 0
        finally:
            await runtime.close()

    return asyncio.run(run())


async def _token(settings: Settings, org: str, user: str | None, client: str | None) -> int:
    from app.auth import principals

    if settings.issuer != "builtin":
        print("error: tokens can only be printed by the built-in issuer", file=sys.stderr)
        return 2
    runtime = Runtime.create(settings)
    try:
        async with runtime.db.transaction() as session:
            if user is not None:
                found = await principals.find_user(session, org, user)
                subject = found.subject if found and found.active else None
                org_id = found.org_id if found else None
            else:
                c = await principals.find_client(session, client or "")
                ok = c is not None and c.active and await _org_is(session, c.org_id, org)
                subject, org_id = (c.subject, c.org_id) if ok and c else (None, None)
            if subject is None:
                print("error: no such active user or client in that organisation",
                      file=sys.stderr)
                return 1
            ctx = context_for(runtime, session, SYSTEM, request_id=f"cli-{uuid.uuid4().hex}")
            ctx.record("token.issue", target_type="Principal", target_id=subject,
                       details={"via": "cli"})
        # An operator tool, run with the data directory's keys: the token counts as signed in
        # with a second factor (acr "mfa"), so step-up actions work in demos and scripts.
        token, _ = runtime.issuer.issue(subject=subject, org_id=str(org_id), acr="mfa")
        print(token)
        return 0
    finally:
        await runtime.close()


async def _enrolment_code(settings: Settings, org: str, username: str, reset: bool) -> int:
    """Print a one-time enrolment code for one person. Operators hold the database and the keys
    already, so this is no new power; it is how the very first people of a deployment (before
    two people of an organisation can issue codes) enrol. Logged (IDs only, never the code)."""
    from app.auth import enrolment, mfa, principals
    from app.tables.auth import TotpCredential

    if settings.issuer != "builtin":
        print("error: second factors are enrolled with the built-in issuer only", file=sys.stderr)
        return 2
    runtime = Runtime.create(settings)
    try:
        async with runtime.db.transaction() as session:
            user = await principals.find_user(session, org, username)
            if user is None or not user.active:
                print("error: no such active user in that organisation", file=sys.stderr)
                return 1
            ctx = context_for(runtime, session, SYSTEM, request_id=f"cli-{uuid.uuid4().hex}")
            cred = await session.get(TotpCredential, user.id)
            if cred is not None and cred.secret is not None:
                if not reset:
                    print("error: this person already has a second factor; to replace a lost "
                          "one, reset it (resetUserTotp, or --reset-factor here)", file=sys.stderr)
                    return 1
                await mfa.remove_factor(ctx, user.id, via="cli")
            issued = await enrolment.issue_by_operator(ctx, user)
        print(f"enrolment code for {org}/{username} (shown once; hand it over in person or by "
              f"phone, never by email): {issued.code}")
        print(f"valid until {issued.expires_at.isoformat(timespec='minutes')}, for one "
              "enrolment (startTotpEnrolment with enrolmentCode); five wrong tries lock it")
        return 0
    finally:
        await runtime.close()


async def her_login(settings: Settings, command: str, peacebuilder: str, *,
                    reset_factor: bool = False) -> int:
    """`safety-net her issue-code|suspend|reinstate`: what her network's focal point does, as
    the operator (who holds the database and the keys already). Logged with the system as
    actor (never the code); she and her network are told as through the API."""
    from app.errors import AppError
    from app.peacebuilders import account

    try:
        pb_id = uuid.UUID(peacebuilder)
    except ValueError:
        print("error: --peacebuilder takes her record's UUID", file=sys.stderr)
        return 2
    runtime = Runtime.create(settings)
    try:
        with tenancy.using(tenancy.SYSTEM):
            async with runtime.db.transaction() as session:
                ctx = context_for(runtime, session, SYSTEM, request_id=f"cli-{uuid.uuid4().hex}")
                try:
                    if command == "issue-code":
                        issued = await account.issue_by_operator(ctx, pb_id,
                                                                 reset_factor=reset_factor)
                    elif command == "suspend":
                        await account.suspend_by_operator(ctx, pb_id)
                    else:
                        await account.reinstate_by_operator(ctx, pb_id)
                except AppError as exc:
                    print(f"error: {exc.message}", file=sys.stderr)
                    return 1
        if command == "issue-code":
            print(f"{issued.purpose} code (shown once; hand it to her in person or by phone, "
                  f"never by email): {issued.code}")
            print(f"valid until {issued.expires_at.isoformat(timespec='minutes')}, once; she "
                  "redeems it at POST /auth/redeem-code and sets her own password")
        else:
            print(f"her login: {'suspended' if command == 'suspend' else 'reinstated'}")
        return 0
    finally:
        await runtime.close()


async def link_identity(settings: Settings, org: str, username: str, subject: str) -> int:
    """Bind one person to her provider account, as the operator (OIDC mode). The same rules as
    linkUserIdentity (once; unlink first to change), logged with `via: cli`."""
    from app.auth import principals
    from app.errors import AppError
    from app.orgs import service as orgs

    if settings.issuer != "oidc":
        print("error: provider accounts are linked in OIDC mode only (SAFETY_NET_ISSUER=oidc)",
              file=sys.stderr)
        return 2
    runtime = Runtime.create(settings)
    try:
        async with runtime.db.transaction() as session:
            user = await principals.find_user(session, org, username)
            if user is None:
                print("error: no such user in that organisation", file=sys.stderr)
                return 1
            ctx = context_for(runtime, session, SYSTEM, request_id=f"cli-{uuid.uuid4().hex}")
            try:
                await orgs.bind_identity(ctx, user, subject, via="cli")
            except AppError as exc:
                await session.rollback()
                print(f"error: {exc.message}", file=sys.stderr)
                return 1
        print(f"{org}/{username} is now the provider account {subject!r} of "
              f"{settings.oidc_issuer}")
        return 0
    finally:
        await runtime.close()


async def _peacebuilder_token(settings: Settings, login: str) -> int:
    from app.consent import repository as consent_repo

    if settings.issuer != "builtin":
        print("error: tokens can only be printed by the built-in issuer", file=sys.stderr)
        return 2
    runtime = Runtime.create(settings)
    try:
        async with runtime.db.transaction() as session:
            account = await consent_repo.account_by_login(session, login)
            if account is None or not account.active:
                print("error: no such active peacebuilder account", file=sys.stderr)
                return 1
            subject = f"peacebuilder:{account.peacebuilder_id}"
            ctx = context_for(runtime, session, SYSTEM, request_id=f"cli-{uuid.uuid4().hex}")
            ctx.record("token.issue", target_type="Peacebuilder", target_id=account.peacebuilder_id,
                       details={"via": "cli"})
        print(runtime.issuer.issue(subject=subject, org_id=None)[0])
        return 0
    finally:
        await runtime.close()


async def _org_is(session: object, org_id: uuid.UUID, slug: str) -> bool:
    from sqlalchemy.ext.asyncio import AsyncSession

    from app.orgs import repository

    assert isinstance(session, AsyncSession)
    org = await repository.org_by_slug(session, slug)
    return org is not None and org.id == org_id


if __name__ == "__main__":
    sys.exit(main())
