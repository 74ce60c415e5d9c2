"""The role guides (docs/api/): every operation file is valid against the SDL partners build on,
every guide lists its files, and each role's read-only operations run against the demo
deployment as that role, without errors, on both databases."""

from __future__ import annotations

from pathlib import Path

import pytest
from graphql import OperationDefinitionNode, OperationType, build_schema, parse, validate

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "api"
SDL = build_schema((ROOT / "schema" / "schema.graphql").read_text(encoding="utf-8"))
ROLES = ["case-worker", "focal-point", "auditor", "machine-client", "her"]
FILES = sorted(DOCS.rglob("*.graphql"))
TEXT = {f: f.read_text(encoding="utf-8") for f in FILES}
GUIDES = {role: (DOCS / f"{role}.md").read_text(encoding="utf-8") for role in ROLES}


def _name(path: Path) -> str:
    return str(path.relative_to(DOCS))


@pytest.mark.parametrize("path", FILES, ids=_name)
def test_every_operation_is_valid_against_the_schema(path: Path) -> None:
    document = parse(TEXT[path])
    errors = validate(SDL, document)
    assert not errors, [e.message for e in errors]
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    assert len(operations) == 1 and operations[0].name is not None, "one named operation a file"


def test_every_role_has_a_guide_listing_its_operations() -> None:
    for role in ROLES:
        files = sorted((DOCS / role).glob("*.graphql"))
        assert files, role
        for f in files:
            assert f"({role}/{f.name})" in GUIDES[role], f"{role}.md does not list {f.name}"
    readme = (DOCS / "README.md").read_text(encoding="utf-8")
    assert all(f"({role}.md)" in readme for role in ROLES)


# --- run as the role, on the demo deployment ------------------------------------------------------

# (role, caller, file, variables): the read-only operations, which change nothing shared.
RUNS = [
    ("case-worker", ("mofa", "caseworker"), "cases.graphql", {}),
    ("case-worker", ("mofa", "caseworker"), "service-directory.graphql", {"language": "fr"}),
    ("focal-point", ("fund", "focal"), "help-requests.graphql", {}),
    ("focal-point", ("mofa", "focal"), "pending-confirmations.graphql", {}),
    ("focal-point", ("mofa", "focal"), "alerts.graphql", {}),
    ("focal-point", ("mofa", "focal"), "inbox.graphql", {}),
    ("auditor", ("nhri", "auditor"), "who-am-i.graphql", {}),
    ("auditor", ("nhri", "auditor"), "access-log.graphql", {"filter": {"decision": "deny"}}),
    ("auditor", ("nhri", "auditor"), "alerts.graphql", {}),
    ("auditor", ("nhri", "auditor"), "verification.graphql", {}),
    ("machine-client", ("mofa", None), "who-am-i.graphql", {}),
    ("machine-client", ("mofa", None), "cases-opened-since.graphql",
     {"since": "2000-01-01T00:00:00Z"}),
    ("machine-client", ("mofa", None), "inbox.graphql", {}),
    ("her", "mariam", "me.graphql", {}),
    ("her", "mariam", "organisations.graphql", {"kind": "UN_PROTECTION_CLUSTER"}),
    ("her", "mariam", "access-history.graphql", {}),
    ("her", "mariam", "my-evidence.graphql", {}),
    ("her", "mariam", "my-approvals.graphql", {}),
    ("her", "mariam", "my-corrections.graphql", {}),
    ("focal-point", ("mofa", "focal"), "correction-requests.graphql", {}),
]


@pytest.mark.anyio
@pytest.mark.parametrize(("role", "caller", "name", "variables"), RUNS,
                         ids=[f"{r[0]}/{r[2]}" for r in RUNS])
async def test_the_read_operations_run_as_their_role(env, role, caller, name, variables) -> None:
    path = DOCS / role / name
    document = parse(TEXT[path])
    (operation,) = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    assert operation.operation is OperationType.QUERY
    if isinstance(caller, str):
        token, purpose = await env.peacebuilder_token(caller), None
    else:
        org, user = caller
        token = await (env.token(org, user) if user else env.token(org, client=f"{org}-system"))
        purpose = "protection"
    body = await env.gql(TEXT[path], variables, token=token, purpose=purpose)
    assert "errors" not in body, body
    assert body["data"], body
