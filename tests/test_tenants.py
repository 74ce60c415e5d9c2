"""`tenants/*.yaml`: validation errors that name file, line and field; `apply` on a fresh database."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.access.principal import SYSTEM
from app.auth.passwords import verify_secret
from app.config import REPO_ROOT
from app.orgs import repository as orgs_repo
from app.runtime import context_for
from app.tables.audit import AccessLogEntry
from app.tables.orgs import Client, Organisation, RoleAssignment, User, WorkingGroup, WorkingGroupMember
from app.tenants import schema as tenant_schema
from app.tenants import service as tenant_service
from app.tenants.schema import TenantFileError, check_references, load_dir, parse_file
from tests.conftest import Env, build_env, unique

pytestmark = pytest.mark.anyio

VALID = """\
# A test organisation.
slug: alpha
name: Alpha Ministry
kind: ministry
country: "KE"
focal_points: [focal]
users:
  - username: focal
    name: Alpha focal point
    roles: [caseworker]
  - username: worker
    name: Alpha case worker
    roles:
      - caseworker
      - analyst
clients:
  - client_id: alpha-system
    name: Alpha system
"""


def line_of(text: str, needle: str, occurrence: int = 1) -> int:
    """1-based line of the `occurrence`-th line containing `needle` (computed from the text)."""
    hits = [i for i, line in enumerate(text.splitlines(), start=1) if needle in line]
    assert len(hits) >= occurrence, f"{needle!r} not in the test document"
    return hits[occurrence - 1]


def write(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def assert_error(exc: TenantFileError, path: Path, line: int, where: str, *fragments: str) -> None:
    assert exc.path == path
    assert exc.line == line, str(exc)
    assert exc.where == where, str(exc)
    assert str(exc).startswith(f"{path}:{line}: {where}: "), str(exc)
    for fragment in fragments:
        assert fragment in str(exc)


LOADERS = {
    "parse_file": lambda path: parse_file(path),
    "load_dir(file)": lambda path: load_dir(path),
    "load_dir(dir)": lambda path: load_dir(path.parent),
}


@pytest.fixture(params=list(LOADERS))
def load(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    """Each single-file check goes through parse_file, load_dir(file) and load_dir(directory)."""
    return LOADERS[request.param]


# --- validation -----------------------------------------------------------------------------------


def test_valid_document_parses(tmp_path: Path) -> None:
    spec = parse_file(write(tmp_path, "alpha.yaml", VALID))
    assert (spec.slug, spec.name, spec.kind, spec.country) == ("alpha", "Alpha Ministry", "ministry", "KE")
    roles = {u.username: u.roles for u in spec.users}
    # focal_points adds the focal_point role to the declared user
    assert roles == {"focal": ["caseworker", "focal_point"], "worker": ["caseworker", "analyst"]}
    assert [(c.client_id, c.name) for c in spec.clients] == [("alpha-system", "Alpha system")]


def test_repository_tenants_load() -> None:
    specs = load_dir(REPO_ROOT / "tenants")
    assert sorted(s.slug for s in specs) == ["embassy", "fund", "mofa", "nhri", "unpc", "wpn"]
    check_references(specs, set())
    assert {s.slug: s.country for s in specs}["embassy"] == "NO"


def test_unknown_kind(tmp_path: Path, load) -> None:  # type: ignore[no-untyped-def]
    text = VALID.replace("kind: ministry", "kind: spaceship")
    path = write(tmp_path, "alpha.yaml", text)
    with pytest.raises(TenantFileError) as info:
        load(path)
    assert_error(info.value, path, line_of(text, "kind: spaceship"), "kind",
                 "unknown value 'spaceship'", "ministry", "un_protection_cluster")


def test_missing_required_top_level_field(tmp_path: Path, load) -> None:  # type: ignore[no-untyped-def]
    text = VALID.replace('country: "KE"\n', "")
    path = write(tmp_path, "alpha.yaml", text)
    with pytest.raises(TenantFileError) as info:
        load(path)
    # reported at the mapping that lacks it: the document's first key, after the comment
    assert_error(info.value, path, line_of(text, "slug: alpha"), "country", "required field missing")


def test_missing_required_field_of_a_user(tmp_path: Path, load) -> None:  # type: ignore[no-untyped-def]
    text = VALID.replace("    name: Alpha case worker\n", "")
    path = write(tmp_path, "alpha.yaml", text)
    with pytest.raises(TenantFileError) as info:
        load(path)
    assert_error(info.value, path, line_of(text, "- username: worker"), "users[1].name",
                 "required field missing")


def test_unknown_role(tmp_path: Path, load) -> None:  # type: ignore[no-untyped-def]
    text = VALID.replace("      - caseworker\n      - analyst", "      - wizard\n      - analyst")
    path = write(tmp_path, "alpha.yaml", text)
    with pytest.raises(TenantFileError) as info:
        load(path)
    assert_error(info.value, path, line_of(text, "- wizard"), "users[1].roles[0]",
                 "unknown value 'wizard'", "caseworker", "org_admin")
    # machine_client is for clients only: not a role a person can be given in the file
    assert "machine_client" not in str(info.value)


def test_unknown_role_in_flow_list(tmp_path: Path, load) -> None:  # type: ignore[no-untyped-def]
    text = VALID.replace("    roles: [caseworker]", "    roles: [caseworker, machine_client]")
    path = write(tmp_path, "alpha.yaml", text)
    with pytest.raises(TenantFileError) as info:
        load(path)
    assert_error(info.value, path, line_of(text, "machine_client"), "users[0].roles[1]",
                 "unknown value 'machine_client'")


def test_duplicate_username(tmp_path: Path, load) -> None:  # type: ignore[no-untyped-def]
    text = VALID.replace("- username: worker", "- username: focal")
    path = write(tmp_path, "alpha.yaml", text)
    with pytest.raises(TenantFileError) as info:
        load(path)
    assert_error(info.value, path, line_of(text, "- username: focal", occurrence=2), "users[1].username",
                 "duplicate username 'focal'")


def test_focal_point_not_a_declared_user(tmp_path: Path, load) -> None:  # type: ignore[no-untyped-def]
    text = VALID.replace("focal_points: [focal]", "focal_points:\n  - focal\n  - ghost")
    path = write(tmp_path, "alpha.yaml", text)
    with pytest.raises(TenantFileError) as info:
        load(path)
    assert_error(info.value, path, line_of(text, "- ghost"), "focal_points[1]",
                 "'ghost' is not one of this file's users")


def test_country_no_unquoted_suggests_quotes(tmp_path: Path, load) -> None:  # type: ignore[no-untyped-def]
    text = VALID.replace('country: "KE"', "country: NO")
    path = write(tmp_path, "alpha.yaml", text)
    with pytest.raises(TenantFileError) as info:
        load(path)
    assert_error(info.value, path, line_of(text, "country: NO"), "country",
                 "expected a string", 'quotes: "NO"')
    # the quoted form is accepted
    quoted = write(tmp_path, "alpha.yaml", VALID.replace('country: "KE"', 'country: "NO"'))
    assert parse_file(quoted).country == "NO"


def test_country_must_be_iso_code(tmp_path: Path) -> None:
    text = VALID.replace('country: "KE"', "country: Kenya")
    path = write(tmp_path, "alpha.yaml", text)
    with pytest.raises(TenantFileError) as info:
        parse_file(path)
    assert_error(info.value, path, line_of(text, "country: Kenya"), "country", "invalid value 'Kenya'",
                 "ISO 3166")


def test_unknown_top_level_field(tmp_path: Path, load) -> None:  # type: ignore[no-untyped-def]
    text = VALID.replace("kind: ministry\n", "kind: ministry\ncolour: blue\n")
    path = write(tmp_path, "alpha.yaml", text)
    with pytest.raises(TenantFileError) as info:
        load(path)
    assert_error(info.value, path, line_of(text, "colour: blue"), "colour", "unknown field",
                 "country", "working_groups")


def test_unknown_field_of_a_client(tmp_path: Path, load) -> None:  # type: ignore[no-untyped-def]
    text = VALID + "    secret: hunter2\n"
    path = write(tmp_path, "alpha.yaml", text)
    with pytest.raises(TenantFileError) as info:
        load(path)
    assert_error(info.value, path, line_of(text, "secret: hunter2"), "clients[0].secret", "unknown field")
    assert "hunter2" not in str(info.value)


def test_invalid_yaml_syntax(tmp_path: Path, load) -> None:  # type: ignore[no-untyped-def]
    text = 'slug: alpha\nname: Alpha\nkind: ministry\n  country: "KE"\n'
    path = write(tmp_path, "alpha.yaml", text)
    with pytest.raises(TenantFileError) as info:
        load(path)
    assert_error(info.value, path, 4, "(document)", "not valid YAML")


def test_empty_file(tmp_path: Path, load) -> None:  # type: ignore[no-untyped-def]
    path = write(tmp_path, "alpha.yaml", "# nothing here\n")
    with pytest.raises(TenantFileError) as info:
        load(path)
    assert_error(info.value, path, 1, "(document)", "file is empty")


def test_directory_without_yaml_files(tmp_path: Path) -> None:
    write(tmp_path, "notes.txt", "not a tenant\n")
    with pytest.raises(TenantFileError) as info:
        load_dir(tmp_path)
    assert_error(info.value, tmp_path, 1, "(directory)", "no *.yaml files")


def test_duplicate_slug_across_files(tmp_path: Path) -> None:
    first = write(tmp_path, "a-first.yaml", VALID)
    second_text = "# Another file declaring the same organisation.\n" + VALID.replace(
        "# A test organisation.\n", "").replace("alpha-system", "alpha-other")
    second = write(tmp_path, "b-second.yaml", second_text)
    assert parse_file(second).slug == "alpha"  # each file is valid on its own
    with pytest.raises(TenantFileError) as info:
        load_dir(tmp_path)
    assert_error(info.value, second, line_of(second_text, "slug: alpha"), "slug",
                 "'alpha' is also declared in", str(first))


def test_working_group_member_not_declared(tmp_path: Path) -> None:
    text = VALID + ("working_groups:\n"
                    "  - slug: jag\n"
                    "    name: Joint Action Group\n"
                    "    members:\n"
                    "      - alpha\n"
                    "      - nowhere\n")
    path = write(tmp_path, "alpha.yaml", text)
    specs = load_dir(tmp_path)  # references to other organisations are checked against the database
    with pytest.raises(TenantFileError) as info:
        check_references(specs, known_slugs={"mofa"})
    assert_error(info.value, path, line_of(text, "- nowhere"), "working_groups[0].members[1]",
                 "unknown organisation 'nowhere'")
    # declared in another file, or already stored: accepted
    write(tmp_path, "nowhere.yaml", VALID.replace("slug: alpha", "slug: nowhere")
          .replace("alpha-system", "nowhere-system"))
    check_references(load_dir(tmp_path), known_slugs=set())
    check_references(specs, known_slugs={"nowhere"})


# --- apply on a fresh database ---------------------------------------------------------------------


@pytest.fixture
async def fresh(backend: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    env, close = await build_env(backend, tmp_path, demo_data=False)
    try:
        yield env
    finally:
        await close()


def copy_tenants(tmp_path: Path) -> Path:
    target = tmp_path / "tenants"
    shutil.copytree(REPO_ROOT / "tenants", target)
    return target


async def apply_path(env: Env, path: Path) -> tuple[tenant_service.ApplyReport, str]:
    request_id = unique("test-apply")
    async with env.runtime.db.transaction() as session:
        ctx = context_for(env.runtime, session, SYSTEM, request_id=request_id)
        report = await tenant_service.apply(ctx, tenant_schema.load_dir(path))
    return report, request_id


async def log_of(env: Env, request_id: str) -> list[AccessLogEntry]:
    async with env.runtime.db.transaction() as session:
        return list(await session.scalars(select(AccessLogEntry)
                                          .where(AccessLogEntry.request_id == request_id)))


async def counts(env: Env) -> dict[str, int]:
    out = {}
    async with env.runtime.db.transaction() as session:
        for model in (Organisation, User, Client, RoleAssignment, WorkingGroup, WorkingGroupMember):
            out[model.__tablename__] = await session.scalar(select(func.count()).select_from(model))
    return out


async def user_roles(env: Env, org: str, username: str) -> set[str]:
    async with env.runtime.db.transaction() as session:
        org_row = await orgs_repo.org_by_slug(session, org)
        assert org_row is not None
        user = await orgs_repo.user_by_username(session, org_row.id, username)
        assert user is not None, f"{org}/{username} is gone"
        return await orgs_repo.roles_of(session, org_row.id, user.subject)


async def test_apply_twice_second_run_changes_nothing(fresh: Env, tmp_path: Path) -> None:
    tenants = copy_tenants(tmp_path)
    report, request_id = await apply_path(fresh, tenants)
    assert report.changed
    assert "organisation mofa: created" in report.changes
    assert "working group jag: wpn joined" in report.changes
    assert report.kept == []
    assert await counts(fresh) == {"organisations": 6, "users": 31, "clients": 6,
                                   "role_assignments": 37, "working_groups": 1,
                                   "working_group_members": 3}
    assert await user_roles(fresh, "mofa", "focal") == {"focal_point"}
    assert await user_roles(fresh, "nhri", "auditor") == {"auditor"}

    # every change is in the access log, in the same transaction, by the system
    rows = await log_of(fresh, request_id)
    assert len(rows) == len(report.changes)
    assert Counter(r.action for r in rows) == {
        "tenants.org_create": 6, "tenants.user_create": 31, "user.roles": 31,
        "tenants.client_create": 6, "tenants.working_group_create": 1, "working_group.join": 3,
        "tenants.oversight_add": 3}
    assert {(r.actor, r.decision) for r in rows} == {(SYSTEM.subject, "allow")}

    # each client secret is shown once and matches the stored hash
    assert sorted(report.new_client_secrets) == ["embassy-system", "fund-system", "mofa-system",
                                                 "nhri-system", "unpc-system", "wpn-system"]
    async with fresh.runtime.db.transaction() as session:
        stored = {c.client_id: c for c in await session.scalars(select(Client))}
    for client_id, secret in report.new_client_secrets.items():
        assert verify_secret(stored[client_id].secret_hash, secret)
        assert secret not in stored[client_id].secret_hash

    before = await counts(fresh)
    again, again_id = await apply_path(fresh, tenants)
    assert not again.changed
    assert again.changes == [] and again.kept == [] and again.new_client_secrets == {}
    assert await log_of(fresh, again_id) == []
    assert await counts(fresh) == before


async def test_apply_keeps_undeclared_user_and_updates_names(fresh: Env, tmp_path: Path) -> None:
    tenants = copy_tenants(tmp_path)
    await apply_path(fresh, tenants)
    async with fresh.runtime.db.transaction() as session:
        mofa = await orgs_repo.org_by_slug(session, "mofa")
        assert mofa is not None
        mofa_id = mofa.id
        analyst = await orgs_repo.user_by_username(session, mofa_id, "analyst")
        assert analyst is not None
        analyst_id = analyst.id

    text = (tenants / "mofa.yaml").read_text()
    text = text.replace("name: Ministry of Foreign Affairs\n",
                        "name: Ministry of Foreign Affairs (renamed)\n")
    text = text.replace("  - username: analyst\n    name: Ministry of Foreign Affairs analyst\n"
                        "    roles: [analyst]\n", "")
    text = text.replace("name: Ministry of Foreign Affairs case worker",
                        "name: Ministry of Foreign Affairs senior case worker")
    # caseworker loses a role in the file (kept), admin gains one (added)
    text = text.replace("roles: [org_admin]", "roles: [org_admin, analyst]")
    text = text.replace("name: Ministry of Foreign Affairs case management system",
                        "name: MoFA case system")
    text += "  - client_id: mofa-reporting\n    name: MoFA reporting\n"
    (tenants / "mofa.yaml").write_text(text)
    (tenants / "wpn.yaml").write_text((tenants / "wpn.yaml").read_text().replace(
        "roles: [caseworker]", "roles: []"))
    assert "analyst" not in {u.username for u in parse_file(tenants / "mofa.yaml").users}

    report, request_id = await apply_path(fresh, tenants)
    assert sorted(report.changes) == sorted([
        "organisation mofa: updated name",
        "user mofa/admin: roles added analyst",
        "user mofa/caseworker: display name updated",
        "client mofa-system: name updated",
        "client mofa-reporting: created",
    ])
    assert sorted(report.kept) == ["user mofa/analyst: not declared, kept",
                                   "user wpn/caseworker: roles not in the file kept: caseworker"]
    assert list(report.new_client_secrets) == ["mofa-reporting"]

    # the undeclared user and the role left out of the file are still there
    assert await user_roles(fresh, "mofa", "analyst") == {"analyst"}
    assert await user_roles(fresh, "wpn", "caseworker") == {"caseworker"}
    assert await user_roles(fresh, "mofa", "admin") == {"org_admin", "analyst"}
    async with fresh.runtime.db.transaction() as session:
        org = await session.get(Organisation, mofa_id)
        assert org is not None and org.name == "Ministry of Foreign Affairs (renamed)"
        assert (await session.get(User, analyst_id)) is not None
        worker = await orgs_repo.user_by_username(session, mofa_id, "caseworker")
        assert worker is not None
        assert worker.display_name == "Ministry of Foreign Affairs senior case worker"
        system = await orgs_repo.client_by_client_id(session, "mofa-system")
        assert system is not None and system.name == "MoFA case system"
        worker_id, system_id = worker.id, system.id
        reporting = await orgs_repo.client_by_client_id(session, "mofa-reporting")
        assert reporting is not None and reporting.org_id == mofa_id
        assert verify_secret(reporting.secret_hash, report.new_client_secrets["mofa-reporting"])
        assert await orgs_repo.roles_of(session, mofa_id, reporting.subject) == {"machine_client"}
        reporting_id = reporting.id

    # every change of this run is logged
    rows = await log_of(fresh, request_id)
    assert len(rows) == len(report.changes), sorted(r.action for r in rows)
    by_action = {r.action: r for r in rows}
    assert by_action["tenants.org_update"].target_id == str(mofa_id)
    assert by_action["tenants.org_update"].details == {"fields": ["name"]}
    assert by_action["tenants.client_create"].target_id == str(reporting_id)
    assert by_action["user.roles"].details == {"added": ["analyst"], "removed": []}
    assert by_action["tenants.user_update"].target_id == str(worker_id)
    assert by_action["tenants.client_update"].target_id == str(system_id)

    # the secret is never shown again; what was kept is reported on every run
    third, third_id = await apply_path(fresh, tenants)
    assert third.changes == [] and third.new_client_secrets == {}
    assert sorted(third.kept) == sorted(report.kept)
    assert await log_of(fresh, third_id) == []


async def test_apply_working_group_members(fresh: Env, tmp_path: Path) -> None:
    await apply_path(fresh, copy_tenants(tmp_path))
    before = await counts(fresh)

    extra = tmp_path / "extra"
    bad_text = VALID + ("working_groups:\n"
                        "  - slug: border-wg\n"
                        "    name: Border working group\n"
                        "    members: [mofa, nowhere]\n")
    bad = write(extra, "alpha.yaml", bad_text)
    with pytest.raises(TenantFileError) as info:
        await apply_path(fresh, extra)
    assert_error(info.value, bad, line_of(bad_text, "members:"), "working_groups[0].members[1]",
                 "unknown organisation 'nowhere'")
    assert await counts(fresh) == before  # nothing of the file was written

    # a member that is only stored (not in the applied files) is accepted
    write(extra, "alpha.yaml", bad_text.replace("[mofa, nowhere]", "[mofa, alpha]"))
    report, request_id = await apply_path(fresh, extra)
    assert "working group border-wg: created" in report.changes
    assert {"working group border-wg: mofa joined",
            "working group border-wg: alpha joined"} <= set(report.changes)
    assert len(await log_of(fresh, request_id)) == len(report.changes)

    # a member removed from the file stays a member, and is reported
    write(extra, "alpha.yaml", bad_text.replace("[mofa, nowhere]", "[alpha]"))
    report, _ = await apply_path(fresh, extra)
    assert report.changes == []
    assert report.kept == ["working group border-wg: 1 member(s) not in the file kept "
                           "(remove them through the API)"]
    async with fresh.runtime.db.transaction() as session:
        wg = await orgs_repo.wg_by_slug(session, "border-wg")
        assert wg is not None
        assert len((await orgs_repo.current_members(session, [wg.id]))[wg.id]) == 2
