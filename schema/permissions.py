"""Root fields declared with what they require; the description's "Requires:" line is generated
from the same declaration, and tests/test_descriptions.py holds it to the checks the code makes.

    @permissions.mutation("Open a case led by your organisation. Logged.",
                          requires=[("case", "create"), ("peacebuilder", "read")])
    async def open_case(self, info: Info, input: OpenCaseInput) -> CasePayload: ...

`requires` lists the Casbin (object, action) pairs the service checks (`AccessContext.require`),
`step_up` a recent second-factor sign-in (`require_recent_mfa`); both are recorded when checked
(app/access/checks.py). `who` says who may call at all beyond roles (people only, she herself),
`when` narrows the whole line to a case ("for staff acting for her"), `purpose` that the answer
holds her records, so a request without `Safety-Net-Purpose` is refused (schema/purpose.py).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import strawberry
from graphql import GraphQLField, GraphQLObjectType, GraphQLSchema, get_named_type, is_abstract_type

from app.access.checks import Check
from schema.purpose import record_types

METADATA_KEY = "safety_net_requires"


class Who(enum.Enum):
    """Who may call at all, beyond what roles allow (checked in the service, described here)."""

    ANYONE_SIGNED_IN = "anyone signed in"
    PUBLIC = "anyone, without signing in"
    PEOPLE = "people only: staff and she herself (not machine clients)"
    STAFF_PEOPLE = "staff people of an organisation only (not machine clients, not her)"
    HERSELF = "she herself, signed in"
    HER_SIDE = "she herself, or a focal point of a network she confirmed acting for her"


@dataclass(frozen=True)
class Requirement:
    requires: tuple[Check, ...] = ()
    step_up: bool = False
    purpose: bool = False
    who: Who | None = None
    when: str | None = None

    def line(self) -> str:
        """The generated "Requires:" sentence that ends the field's description."""
        parts: list[str] = []
        if self.requires:
            parts.append(" and ".join(f"`{obj}:{act}`" for obj, act in self.requires))
        if self.step_up:
            parts.append("a second-factor sign-in within the step-up window (15 minutes by "
                         "default; STEP_UP_REQUIRED otherwise)")
        if self.purpose:
            parts.append("a declared purpose (`Safety-Net-Purpose`) from staff and machine "
                         "clients when it selects her records")
        who = (self.who or Who.ANYONE_SIGNED_IN).value
        text = "; ".join(parts) if parts else "no permission"
        line = f"Requires: {text}. Callers: {who}."
        return f"{line} {self.when[0].upper()}{self.when[1:]}." if self.when else line


Decorator = Callable[[Callable[..., Any]], Any]


def _declare(make: Callable[..., Any], description: str, requires: Sequence[Check],
             step_up: bool, purpose: bool, who: Who | None, when: str | None,
             args: Mapping[str, str] | None, deprecated: str | None = None) -> Decorator:
    declared = Requirement(tuple(requires), step_up, purpose, who, when)
    text = f"{description.rstrip()} {declared.line()}"
    extra = {"deprecation_reason": deprecated} if deprecated else {}
    field = make(description=text, metadata={METADATA_KEY: declared}, **extra)

    def decorate(resolver: Callable[..., Any]) -> Any:
        made = field(resolver)
        described = dict(args or {})
        for argument in made.arguments:
            if argument.python_name in described:
                argument.description = described.pop(argument.python_name)
        if described:
            raise TypeError(f"{resolver.__name__} has no argument(s) {sorted(described)}")
        return made

    return decorate


def query(description: str, *, requires: Sequence[Check] = (), step_up: bool = False,
          purpose: bool = False, who: Who | None = None, when: str | None = None,
          args: Mapping[str, str] | None = None, deprecated: str | None = None) -> Decorator:
    """A Query field with its declared requirement (`args`: its arguments' descriptions;
    `deprecated`: the reason, when it is)."""
    return _declare(strawberry.field, description, requires, step_up, purpose, who, when, args,
                    deprecated)


def mutation(description: str, *, requires: Sequence[Check] = (), step_up: bool = False,
             purpose: bool = False, who: Who | None = None, when: str | None = None,
             args: Mapping[str, str] | None = None) -> Decorator:
    """A Mutation field with its declared requirement (`args`: its arguments' descriptions)."""
    return _declare(strawberry.mutation, description, requires, step_up, purpose, who, when,
                    args)


def subscription(description: str, *, requires: Sequence[Check] = (), step_up: bool = False,
                 purpose: bool = False, who: Who | None = None,
                 when: str | None = None, args: Mapping[str, str] | None = None) -> Decorator:
    """A Subscription field with its declared requirement."""
    return _declare(strawberry.subscription, description, requires, step_up, purpose, who, when,
                    args)


def declared(field: Any) -> Requirement | None:
    """The requirement of a built root field (graphql-core's field), or None if undeclared."""
    definition = field.extensions.get("strawberry-definition")
    metadata = getattr(definition, "metadata", None) or {}
    found = metadata.get(METADATA_KEY)
    return found if isinstance(found, Requirement) else None


def reads_records(schema: GraphQLSchema, field: GraphQLField) -> bool:
    """Whether selecting this root field can select her records (directly, through a payload's
    field, or a Node's fragment): then staff need a purpose (schema/purpose.py), and its
    declaration must say so."""
    records = record_types(schema)
    named = get_named_type(field.type)
    candidates = list(schema.get_possible_types(named)) if is_abstract_type(named) else [named]
    for t in candidates:
        if t.name in records:
            return True
        if isinstance(t, GraphQLObjectType) and any(
                get_named_type(f.type).name in records for f in t.fields.values()):
            return True
    return False
