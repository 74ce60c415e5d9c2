"""Descriptions that follow from a convention of the whole schema, written once here instead of
copied onto every payload: a mutation's `input`, a payload's `userErrors` and its result, an
`id`. Each applies only where the type itself says nothing more specific."""

from __future__ import annotations

import re

from graphql import GraphQLID, GraphQLNonNull, GraphQLObjectType, GraphQLSchema

INPUT = "Everything the mutation needs, as one object (see the input type's fields)."
USER_ERRORS = ("Why nothing was changed, one entry per problem with the input (field path, "
               "message, code); empty when the mutation succeeded.")
ID = "Opaque global ID; do not parse it."
ROOTS = {
    "Query": "What a caller may read. Each field says what it requires.",
    "Mutation": ("What a caller may change. Each mutation takes one `input` and answers a "
                 "payload with `userErrors`; a mutation with user errors changes nothing."),
    "Subscription": ("Alerts and notices as they happen, over the `graphql-transport-ws` "
                     "WebSocket protocol at /graphql."),
}


def _words(name: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", lambda m: " " + m.group(1).lower(), name)


def conventional_descriptions(schema: GraphQLSchema) -> None:
    """Fill what the conventions describe; never replace a description the code wrote."""
    for root, text in ROOTS.items():
        t = schema.type_map.get(root)
        if t is not None and not t.description:
            t.description = text
    mutation = schema.type_map.get("Mutation")
    if isinstance(mutation, GraphQLObjectType):
        for field in mutation.fields.values():
            arg = field.args.get("input")
            if arg is not None and not arg.description:
                arg.description = INPUT
    for t in schema.type_map.values():
        if not isinstance(t, GraphQLObjectType) or t.name.startswith("__"):
            continue
        payload = t.name.endswith("Payload")
        if payload and not t.description:
            t.description = f"The answer of a mutation about a {_words(t.name[:-7])}."
        for name, field in t.fields.items():
            if field.description:
                continue
            if name == "userErrors":
                field.description = USER_ERRORS
            elif name == "id" and field.type == GraphQLNonNull(GraphQLID):
                field.description = ID
            elif payload:
                field.description = (f"The {_words(name)} as it is after the mutation; null "
                                     "when there are `userErrors`.")
