"""Which documents touch peacebuilders' records, so that one sent without a purpose is refused
(`PURPOSE_REQUIRED`) instead of answered with empty lists, nulls or NOT_FOUND.

A document reads her records when it selects a field of, or returning, a record type: one that
implements `ConsentGated`, `Peacebuilder`, or an edge or connection of them. Derived from the
schema itself, so a new gated type is covered by implementing the interface.
"""

from __future__ import annotations

from functools import cache

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    OperationType,
    TypeInfo,
    TypeInfoVisitor,
    Visitor,
    get_named_type,
    get_operation_ast,
    visit,
)

RECORDS = ("Peacebuilder",)


@cache
def record_types(schema: GraphQLSchema) -> frozenset[str]:
    gated = schema.get_type("ConsentGated")
    names = set(RECORDS)
    if isinstance(gated, GraphQLInterfaceType):
        names |= {t.name for t in schema.get_possible_types(gated)}
    grew = True
    while grew:  # edges of records, then connections of those edges
        grew = False
        for t in schema.type_map.values():
            if not isinstance(t, GraphQLObjectType) or t.name in names:
                continue
            for key in ("node", "edges"):
                f = t.fields.get(key)
                if f is not None and get_named_type(f.type).name in names:
                    names.add(t.name)
                    grew = True
                    break
    return frozenset(names)


class _Finder(Visitor):
    def __init__(self, info: TypeInfo, records: frozenset[str]) -> None:
        super().__init__()
        self.info, self.records, self.found = info, records, False

    def enter_field(self, node: FieldNode, *_: object) -> None:
        parent, returned = self.info.get_parent_type(), self.info.get_type()
        for t in (parent, get_named_type(returned) if returned is not None else None):
            if t is not None and t.name in self.records:
                self.found = True


def reads_records(schema: GraphQLSchema, document: DocumentNode, operation: str | None, *,
                  mutations: bool = True) -> bool:
    """Whether the operation to run selects a record type (in its fragments too): a query, or a
    mutation (which without a purpose could not even find her record: NOT_FOUND would hide the
    reason). A missing operation, or a mutation sent where mutations are refused (GET), is
    execution's to refuse."""
    op = get_operation_ast(document, operation)
    if op is None or op.operation is OperationType.SUBSCRIPTION:
        return False
    if op.operation is OperationType.MUTATION and not mutations:
        return False
    fragments = [d for d in document.definitions if isinstance(d, FragmentDefinitionNode)]
    info = TypeInfo(schema)
    finder = _Finder(info, record_types(schema))
    visit(DocumentNode(definitions=(op, *fragments)), TypeInfoVisitor(info, finder))
    return finder.found
