"""Validation of `tenants/*.yaml` with errors that name file, line and field."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from app.notify.chain import ESCALATION_ROLES, MAX_MINUTES, MIN_MINUTES, Level
from app.tables.orgs import OrgKind, Role

SLUG = re.compile(r"^[a-z][a-z0-9-]{1,63}$")
NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
CLIENT_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{2,79}$")
COUNTRY = re.compile(r"^[A-Z]{2}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
PERSON_ROLES = sorted(r.value for r in Role if r is not Role.MACHINE_CLIENT)


class TenantFileError(ValueError):
    """One problem in a tenants file: `file:line: field: message`."""

    def __init__(self, path: Path, line: int, where: str, message: str) -> None:
        super().__init__(f"{path}:{line}: {where}: {message}")
        self.path, self.line, self.where = path, line, where


@dataclass
class UserSpec:
    username: str
    display_name: str
    roles: list[str]
    email: str | None = None


@dataclass
class ClientSpec:
    client_id: str
    name: str


@dataclass
class WorkingGroupSpec:
    slug: str
    name: str
    members: list[str]
    line: int
    member_lines: list[int] = field(default_factory=list)  # 1-based line of each member


@dataclass
class OrgSpec:
    path: Path
    slug: str
    name: str
    kind: str
    country: str
    users: list[UserSpec] = field(default_factory=list)
    clients: list[ClientSpec] = field(default_factory=list)
    working_groups: list[WorkingGroupSpec] = field(default_factory=list)
    # Oversight bodies (e.g. an NHRI) whose auditors may read this organisation's access log.
    oversight: list[tuple[str, int]] = field(default_factory=list)
    # The escalation chain ({"levels": [{"to", "minutes"}], "head_of_protection": username}):
    # None means the default chain (app/notify/chain.py).
    escalation: dict[str, Any] | None = None
    # How long closed cases keep their data ({"days", "warn_days"}; app/incidents/retention.py):
    # None means the default.
    retention: dict[str, int] | None = None
    # Hours each detention check is due after a detention (app/justice); None: the defaults.
    detention_checks: dict[str, int] | None = None
    # Days a current risk assessment stays valid for the gates (app/access/risk_gates.py); None: 90.
    risk_assessment_max_age_days: int | None = None
    slug_line: int = 1


class _Reader:
    """Walks a YAML node tree, keeping line numbers for every error."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, node: yaml.Node, where: str, message: str) -> TenantFileError:
        return TenantFileError(self.path, node.start_mark.line + 1, where, message)

    def mapping(self, node: yaml.Node, where: str, required: set[str],
                optional: set[str]) -> dict[str, yaml.Node]:
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node, where, "expected a mapping")
        out: dict[str, yaml.Node] = {}
        for key, value in node.value:
            name = key.value
            if name not in required | optional:
                allowed = ", ".join(sorted(required | optional))
                raise self.fail(key, f"{where}.{name}" if where else name,
                                f"unknown field (expected one of: {allowed})")
            if name in out:
                raise self.fail(key, f"{where}.{name}" if where else name, "duplicate field")
            out[name] = value
        for name in sorted(required - out.keys()):
            raise self.fail(node, f"{where}.{name}" if where else name, "required field missing")
        return out

    def string(self, node: yaml.Node, where: str, pattern: re.Pattern[str] | None = None,
               hint: str = "") -> str:
        if not isinstance(node, yaml.ScalarNode) or node.tag != "tag:yaml.org,2002:str":
            hint = f" (write it in quotes: \"{node.value}\")" \
                if isinstance(node, yaml.ScalarNode) else ""
            raise self.fail(node, where, f"expected a string{hint}")
        value = str(node.value)
        if not value.strip():
            raise self.fail(node, where, "must not be empty")
        if pattern is not None and not pattern.match(value):
            raise self.fail(node, where, f"invalid value {value!r}{hint}")
        return value

    def sequence(self, node: yaml.Node, where: str) -> list[yaml.Node]:
        if not isinstance(node, yaml.SequenceNode):
            raise self.fail(node, where, "expected a list")
        return list(node.value)

    def choice(self, node: yaml.Node, where: str, options: list[str]) -> str:
        value = self.string(node, where)
        if value not in options:
            raise self.fail(node, where, f"unknown value {value!r} (expected one of: "
                                         f"{', '.join(options)})")
        return value


def parse_file(path: Path) -> OrgSpec:
    r = _Reader(path)
    try:
        root = yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else 1
        raise TenantFileError(path, line, "(document)", f"not valid YAML: {exc.problem}") from exc
    if root is None:
        raise TenantFileError(path, 1, "(document)", "file is empty")
    top = r.mapping(root, "", {"slug", "name", "kind", "country"},
                    {"focal_points", "users", "clients", "working_groups",
                     "accepts_oversight_from", "escalation", "retention",
                     "detention_checks", "risk_assessment_max_age_days"})
    spec = OrgSpec(
        path=path,
        slug=r.string(top["slug"], "slug", SLUG, " (lowercase letters, digits, '-')"),
        name=r.string(top["name"], "name"),
        kind=r.choice(top["kind"], "kind", [k.value for k in OrgKind]),
        country=r.string(top["country"], "country", COUNTRY, " (ISO 3166 alpha-2, e.g. 'KE')"),
        slug_line=top["slug"].start_mark.line + 1,
    )
    for i, item in enumerate(r.sequence(top["accepts_oversight_from"], "accepts_oversight_from")
                             if "accepts_oversight_from" in top else []):
        spec.oversight.append((r.string(item, f"accepts_oversight_from[{i}]", SLUG),
                               item.start_mark.line + 1))
    usernames: dict[str, UserSpec] = {}
    for i, item in enumerate(r.sequence(top["users"], "users") if "users" in top else []):
        where = f"users[{i}]"
        u = r.mapping(item, where, {"username", "name", "roles"}, {"email"})
        username = r.string(u["username"], f"{where}.username", NAME)
        if username in usernames:
            raise r.fail(u["username"], f"{where}.username", f"duplicate username {username!r}")
        roles = [r.choice(n, f"{where}.roles[{j}]", PERSON_ROLES)
                 for j, n in enumerate(r.sequence(u["roles"], f"{where}.roles"))]
        email = r.string(u["email"], f"{where}.email", EMAIL) if "email" in u else None
        usernames[username] = UserSpec(username, r.string(u["name"], f"{where}.name"), roles, email)
    for i, item in enumerate(r.sequence(top["focal_points"], "focal_points")
                             if "focal_points" in top else []):
        username = r.string(item, f"focal_points[{i}]", NAME)
        if username not in usernames:
            raise r.fail(item, f"focal_points[{i}]", f"{username!r} is not one of this file's users")
        if Role.FOCAL_POINT.value not in usernames[username].roles:
            usernames[username].roles.append(Role.FOCAL_POINT.value)
    spec.users = list(usernames.values())
    if "escalation" in top:
        spec.escalation = _escalation(r, top["escalation"], usernames)
    if "retention" in top:
        spec.retention = _retention(r, top["retention"])
    if "detention_checks" in top:
        spec.detention_checks = _detention_checks(r, top["detention_checks"])
    if "risk_assessment_max_age_days" in top:
        spec.risk_assessment_max_age_days = _whole(r, top["risk_assessment_max_age_days"],
                                                   "risk_assessment_max_age_days", 1, 730)
    seen_clients: set[str] = set()
    for i, item in enumerate(r.sequence(top["clients"], "clients") if "clients" in top else []):
        where = f"clients[{i}]"
        c = r.mapping(item, where, {"client_id", "name"}, set())
        client_id = r.string(c["client_id"], f"{where}.client_id", CLIENT_ID)
        if client_id in seen_clients:
            raise r.fail(c["client_id"], f"{where}.client_id", f"duplicate client {client_id!r}")
        seen_clients.add(client_id)
        spec.clients.append(ClientSpec(client_id, r.string(c["name"], f"{where}.name")))
    for i, item in enumerate(r.sequence(top["working_groups"], "working_groups")
                             if "working_groups" in top else []):
        where = f"working_groups[{i}]"
        w = r.mapping(item, where, {"slug", "name", "members"}, set())
        member_nodes = r.sequence(w["members"], f"{where}.members")
        members = [r.string(n, f"{where}.members[{j}]", SLUG) for j, n in enumerate(member_nodes)]
        spec.working_groups.append(WorkingGroupSpec(
            r.string(w["slug"], f"{where}.slug", SLUG), r.string(w["name"], f"{where}.name"),
            members, w["slug"].start_mark.line + 1,
            [n.start_mark.line + 1 for n in member_nodes]))
    return spec


def _escalation(r: _Reader, node: yaml.Node, users: dict[str, UserSpec]) -> dict[str, Any]:
    """`escalation: {levels: [{to, minutes}], head_of_protection: username}`, validated."""
    e = r.mapping(node, "escalation", {"levels"}, {"head_of_protection"})
    levels: list[dict[str, Any]] = []
    level_nodes = r.sequence(e["levels"], "escalation.levels")
    if not level_nodes:
        raise r.fail(e["levels"], "escalation.levels", "at least one level")
    for i, item in enumerate(level_nodes):
        where = f"escalation.levels[{i}]"
        lv = r.mapping(item, where, {"to", "minutes"}, set())
        to = r.choice(lv["to"], f"{where}.to", [v.value for v in Level])
        if any(x["to"] == to for x in levels):
            raise r.fail(lv["to"], f"{where}.to", f"{to!r} is already a level")
        m = lv["minutes"]
        text = str(m.value) if isinstance(m, yaml.ScalarNode) else ""
        if (not isinstance(m, yaml.ScalarNode) or m.tag != "tag:yaml.org,2002:int"
                or not text.isdigit() or not MIN_MINUTES <= int(text) <= MAX_MINUTES):
            raise r.fail(lv["minutes"], f"{where}.minutes",
                         f"whole minutes from {MIN_MINUTES} to {MAX_MINUTES}")
        levels.append({"to": to, "minutes": int(text)})
    head = None
    if "head_of_protection" in e:
        head = r.string(e["head_of_protection"], "escalation.head_of_protection", NAME)
        if head not in users:
            raise r.fail(e["head_of_protection"], "escalation.head_of_protection",
                         f"{head!r} is not one of this file's users")
        if not set(users[head].roles) & set(ESCALATION_ROLES):
            raise r.fail(e["head_of_protection"], "escalation.head_of_protection",
                         f"{head!r} must be a focal point or an administrator")
    if any(x["to"] == Level.HEAD_OF_PROTECTION for x in levels) and head is None:
        raise r.fail(e["levels"], "escalation.levels",
                     "a head_of_protection level needs escalation.head_of_protection")
    return {"levels": levels, "head_of_protection": head}


# Bounds of a declared retention period (days after closure) and of its warning.
RETENTION_MIN_DAYS, RETENTION_MAX_DAYS = 30, 3650


def _whole(r: _Reader, node: yaml.Node, where: str, low: int, high: int) -> int:
    text = str(node.value) if isinstance(node, yaml.ScalarNode) else ""
    if (not isinstance(node, yaml.ScalarNode) or node.tag != "tag:yaml.org,2002:int"
            or not text.isdigit() or not low <= int(text) <= high):
        raise r.fail(node, where, f"whole days from {low} to {high}")
    return int(text)


def _retention(r: _Reader, node: yaml.Node) -> dict[str, int]:
    """`retention: {days, warn_days}`: closed cases' data erased `days` after closure, the
    focal points warned `warn_days` before (default 30)."""
    e = r.mapping(node, "retention", {"days"}, {"warn_days"})
    days = _whole(r, e["days"], "retention.days", RETENTION_MIN_DAYS, RETENTION_MAX_DAYS)
    warn = (_whole(r, e["warn_days"], "retention.warn_days", 1, days - 1)
            if "warn_days" in e else min(30, days - 1))
    return {"days": days, "warn_days": warn}
CHECK_KINDS = ("lawyer_access", "family_visit", "medical_access")
MAX_CHECK_HOURS = 14 * 24


def _detention_checks(r: _Reader, node: yaml.Node) -> dict[str, int]:
    """`detention_checks: {lawyer_access: hours, family_visit: hours, medical_access: hours}`
    (any of them; the others keep their defaults), validated."""
    d = r.mapping(node, "detention_checks", set(), set(CHECK_KINDS))
    out: dict[str, int] = {}
    for kind, value in d.items():
        text = str(value.value) if isinstance(value, yaml.ScalarNode) else ""
        if (not isinstance(value, yaml.ScalarNode) or value.tag != "tag:yaml.org,2002:int"
                or not text.isdigit() or not 1 <= int(text) <= MAX_CHECK_HOURS):
            raise r.fail(value, f"detention_checks.{kind}",
                         f"whole hours from 1 to {MAX_CHECK_HOURS}")
        out[kind] = int(text)
    return out


def load_dir(path: Path) -> list[OrgSpec]:
    """Parse every `*.yaml` file (or one file) and check cross-file references."""
    files = sorted(path.glob("*.yaml")) if path.is_dir() else [path]
    if not files:
        raise TenantFileError(path, 1, "(directory)", "no *.yaml files found")
    specs = [parse_file(f) for f in files]
    slugs: dict[str, OrgSpec] = {}
    for spec in specs:
        if spec.slug in slugs:
            raise TenantFileError(spec.path, spec.slug_line, "slug",
                                  f"{spec.slug!r} is also declared in {slugs[spec.slug].path}")
        slugs[spec.slug] = spec
    return specs


def check_references(specs: list[OrgSpec], known_slugs: set[str]) -> None:
    """Working-group members must be declared organisations (in these files or already stored)."""
    available = known_slugs | {s.slug for s in specs}
    for spec in specs:
        for i, wg in enumerate(spec.working_groups):
            for j, member in enumerate(wg.members):
                if member not in available:
                    line = wg.member_lines[j] if j < len(wg.member_lines) else wg.line
                    raise TenantFileError(spec.path, line, f"working_groups[{i}].members[{j}]",
                                          f"unknown organisation {member!r}")
        for i, (overseer, line) in enumerate(spec.oversight):
            if overseer not in available:
                raise TenantFileError(spec.path, line, f"accepts_oversight_from[{i}]",
                                      f"unknown organisation {overseer!r}")


