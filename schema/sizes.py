"""How big each text field can be, declared once (docs/decisions/0018-bounded-responses.md).

Output: every String field has a size class, SHORT unless declared below; the cost model
(schema/limits.py) counts a field by its class, and unpaged lists by their declared size.
Input: every String and ID a client sends (input-object fields and arguments) has a length
limit, SHORT unless declared below; `check_inputs` refuses a longer value with BAD_USER_INPUT
naming the field, before the request's database session opens, so nothing is written. The
limits are added to the SDL descriptions (`document_limits`) and listed in docs/limits.md.
"""

from __future__ import annotations

import enum
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from graphql import (
    ArgumentNode,
    DocumentNode,
    FieldNode,
    GraphQLInputObjectType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLScalarType,
    GraphQLSchema,
    ObjectFieldNode,
    OperationDefinitionNode,
    StringValueNode,
    TypeInfo,
    TypeInfoVisitor,
    VariableDefinitionNode,
    VariableNode,
    Visitor,
    get_named_type,
    visit,
)

from app.errors import BadInput


class Size(enum.Enum):
    """(characters at most, cost weight). An object costs 1 in the cost model; a SHORT text is
    part of its object; a LONG one counts 1; a DOCUMENT (20,000 characters, up to ~120 KB once
    JSON-escaped) counts 10."""

    SHORT = (200, 0)
    LONG = (2_000, 1)
    DOCUMENT = (20_000, 10)
    # A whole record in one string (the deprecated `me { dataCopy }`).
    EXPORT = (0, 500)

    @property
    def chars(self) -> int:
        return self.value[0]

    @property
    def weight(self) -> int:
        return self.value[1]


# --- output: String fields that are not SHORT ------------------------------------------------
OUTPUT: dict[str, Size] = {
    "Case.summary": Size.DOCUMENT,
    "CaseNote.body": Size.DOCUMENT,
    "Incident.description": Size.DOCUMENT,
    "Incident.allegedSourceAsReported": Size.DOCUMENT,
    "Incident.locationCoarse": Size.LONG,
    "Incident.locationPrecise": Size.LONG,
    "Measure.description": Size.LONG,
    "Referral.request": Size.LONG,
    "Referral.outcome": Size.LONG,
    "Proceeding.details": Size.DOCUMENT,
    "Hearing.outcome": Size.LONG,
    "Detention.place": Size.LONG,
    "DetentionVisit.notes": Size.LONG,
    "RegisteredOperation.document": Size.DOCUMENT,
    "AccessLogEntry.details": Size.LONG,
    "AccessHistoryEntry.description": Size.LONG,
    "Alert.details": Size.LONG,
    "InboxAlert.payload": Size.LONG,
    "InboxAlert.data": Size.LONG,
    "AccessLogEntry.data": Size.LONG,
    "Alert.data": Size.LONG,
    "Notice.data": Size.LONG,
    "TimelineEvent.data": Size.LONG,
    "HelpRequestEvent.data": Size.LONG,
    "Notice.details": Size.LONG,
    "Notice.text": Size.LONG,
    "TimelineEvent.details": Size.LONG,
    "HelpRequest.message": Size.LONG,
    "HelpRequest.contact": Size.LONG,
    "HelpRequestEvent.details": Size.LONG,
    "Confirmation.reason": Size.LONG,
    "Confirmation.evidence": Size.LONG,
    "Query.consentReceipt": Size.LONG,
    "Me.dataCopy": Size.EXPORT,
    "Approval.description": Size.DOCUMENT,
    "CorrectionRequest.message": Size.LONG,
    "DataRequest.reason": Size.LONG,
    **{f"PeacebuilderProfile.{name}": Size.LONG for name in (
        "legalName", "dateOfBirth", "nationality", "phone", "email", "secureMessenger",
        "country", "region", "address", "coordinates", "familyMembers", "healthNotes",
        "legalSituation", "bankDetails", "travelPlans")},
}

# Lists without a page argument: how many items the cost model counts (others, a case's
# incidents, measures and timeline included, count the default page, 20). An expectation, not a
# bound: a case can hold hundreds of incidents, and the response-size limit is the bound.
LISTS: dict[str, int] = {
    # Her cases: one or two in practice.
    "Me.cases": 3,
    "Peacebuilder.cases": 3,
    "Me.caseOverview": 3,
    "PlainCaseSummary.lines": 20,
    # Levels 0 to 10.
    "Query.myAlertChannels": 11,
    "SetAlertChannelsPayload.levels": 11,
}

# --- input: text a client sends that may be longer than SHORT ---------------------------------
INPUT: dict[str, Size | int] = {
    "OpenCaseInput.summary": Size.DOCUMENT,
    "UpdateCaseInput.summary": Size.DOCUMENT,
    "AddCaseNoteInput.body": Size.DOCUMENT,
    "ReportIncidentInput.description": Size.DOCUMENT,
    "ReportIncidentInput.allegedSourceAsReported": Size.DOCUMENT,
    "ReportIncidentInput.locationCoarse": Size.LONG,
    "ReportIncidentInput.locationPrecise": Size.LONG,
    "ProceedingInput.data": Size.DOCUMENT,
    "RecordHearingOutcomeInput.notes": Size.LONG,
    "RecordDetentionInput.place": Size.LONG,
    "RecordDetentionVisitInput.notes": Size.LONG,
    "AddMeasureInput.description": Size.LONG,
    "FollowUpInput.description": Size.LONG,
    "ReferCaseInput.request": Size.LONG,
    "RequestHelpInput.message": Size.LONG,
    "RequestHelpInput.contact": 500,
    "RequestCorrectionInput.message": Size.LONG,
    "AnswerCorrectionInput.reason": Size.LONG,
    "UploadAttachmentInput.contentBase64": 240_000,
    "AnswerCorrectionInput.correctedValue": Size.LONG,
    "GrantConsentInput.note": Size.LONG,
    "IntakeConsentInput.note": Size.LONG,
    "ExtendConsentInput.note": Size.LONG,
    "NarrowConsentInput.note": Size.LONG,
    "ConsentEvidenceInput.reference": Size.LONG,
    "OpenBreakGlassInput.reason": Size.LONG,
    "ProfileFieldFilter.value": Size.LONG,
    "RegisterOperationInput.document": 32 * 1024,
    "Mutation.eraseMyData(reason)": Size.LONG,
    "Mutation.recordApproval(description)": 5_000,
    "Mutation.moveReferral(outcome)": Size.LONG,
    "EraseDataInput.reason": Size.LONG,
    "RecordApprovalInput.description": 5_000,
    "MoveReferralInput.outcome": Size.LONG,
    **{f"PeacebuilderProfileInput.{name}": Size.LONG for name in (
        "legalName", "dateOfBirth", "nationality", "phone", "email", "secureMessenger",
        "country", "region", "address", "coordinates", "familyMembers", "healthNotes",
        "legalSituation", "bankDetails", "travelPlans")},
}
TEXT_SCALARS = frozenset({"String", "ID"})


def output_weight(type_name: str, field: str) -> int:
    size = OUTPUT.get(f"{type_name}.{field}")
    return size.weight if size is not None else 0


def list_size(type_name: str, field: str) -> int | None:
    return LISTS.get(f"{type_name}.{field}")


def input_limit(key: str) -> int:
    # Cursors (`after`) are opaque and may grow with their key: LONG unless declared.
    size = INPUT.get(key, Size.LONG if key.endswith("(after)") else Size.SHORT)
    return size if isinstance(size, int) else size.chars


class InputTooLong(BadInput):
    """A text input over its declared length (refused before anything runs)."""

    def __init__(self, key: str, limit: int) -> None:
        name = key.rsplit("(", 1)[1].rstrip(")") if "(" in key else key.rsplit(".", 1)[1]
        super().__init__(f"`{name}` ({key}) is limited to {limit} characters.", field=name)
        self.key, self.limit = key, limit


# --- checking inputs ---------------------------------------------------------------------------

@dataclass(frozen=True)
class _Usage:
    """A variable used where a value of `input_type` goes, at `key` (its position)."""

    variable: str
    key: str
    input_type: Any


@dataclass(frozen=True)
class _Inputs:
    too_long: tuple[tuple[str, int], ...]  # literal strings over their limit: (key, limit)
    usages: tuple[_Usage, ...]


def check_inputs(schema: GraphQLSchema, query: str, document: DocumentNode,
                 variables: dict[str, Any] | None, operation_name: str | None) -> None:
    """Every text value of the operation within its field's limit, or InputTooLong."""
    found = _inputs(schema, query, document, operation_name)
    if found.too_long:
        raise InputTooLong(*found.too_long[0])
    if not isinstance(variables, dict) or not variables or not found.usages:
        return
    for usage in found.usages:
        if usage.variable in variables:
            _check_value(variables[usage.variable], usage.input_type, usage.key)


def _check_value(value: Any, type_: Any, key: str) -> None:
    if value is None:
        return
    if isinstance(type_, GraphQLNonNull):
        type_ = type_.of_type
    if isinstance(type_, GraphQLList):
        for item in value if isinstance(value, list) else [value]:
            _check_value(item, type_.of_type, key)
    elif isinstance(type_, GraphQLInputObjectType):
        if isinstance(value, dict):
            for name, field in type_.fields.items():
                if name in value:
                    _check_value(value[name], field.type, f"{type_.name}.{name}")
    elif isinstance(type_, GraphQLScalarType) and type_.name in TEXT_SCALARS:
        if isinstance(value, str) and len(value) > (limit := input_limit(key)):
            raise InputTooLong(key, limit)


_CACHE: OrderedDict[tuple[int, str, str | None], _Inputs] = OrderedDict()
_CACHE_SIZE = 512


def _inputs(schema: GraphQLSchema, query: str, document: DocumentNode,
            operation_name: str | None) -> _Inputs:
    """What the document's text holds, cached by its text (the document is its parse)."""
    key = (id(schema), query, operation_name)
    found = _CACHE.get(key)
    if found is None:
        found = _CACHE[key] = _walk(schema, document, operation_name)
        if len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    else:
        _CACHE.move_to_end(key)
    return found


def _walk(schema: GraphQLSchema, document: DocumentNode, operation_name: str | None) -> _Inputs:
    type_info = TypeInfo(schema)
    collector = _Collector(type_info)
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode) and (
                operation_name is None or (definition.name and
                                           definition.name.value == operation_name)):
            visit(definition, TypeInfoVisitor(type_info, collector))
    # Fragments are walked from where they are spread only through their own type: text in
    # them is literal and checked the same way.
    for definition in document.definitions:
        if not isinstance(definition, OperationDefinitionNode):
            visit(definition, TypeInfoVisitor(type_info, collector))
    return _Inputs(tuple(collector.too_long), tuple(collector.usages))


class _Collector(Visitor):
    def __init__(self, type_info: TypeInfo) -> None:
        super().__init__()
        self.type_info = type_info
        self.fields: list[str] = []
        self.keys: list[str] = []
        self.too_long: list[tuple[str, int]] = []
        self.usages: list[_Usage] = []
        self.in_definition = 0

    def enter_field(self, node: FieldNode, *_: Any) -> None:
        parent = self.type_info.get_parent_type()
        self.fields.append(f"{parent.name if parent else '?'}.{node.name.value}")

    def leave_field(self, *_: Any) -> None:
        self.fields.pop()

    def enter_variable_definition(self, node: VariableDefinitionNode, *_: Any) -> None:
        self.in_definition += 1

    def leave_variable_definition(self, *_: Any) -> None:
        self.in_definition -= 1

    def enter_argument(self, node: ArgumentNode, *_: Any) -> None:
        field = self.fields[-1] if self.fields else "?"
        self.keys.append(f"{field}({node.name.value})")

    def leave_argument(self, *_: Any) -> None:
        self.keys.pop()

    def enter_object_field(self, node: ObjectFieldNode, *_: Any) -> None:
        parent = get_named_type(self.type_info.get_parent_input_type())
        self.keys.append(f"{parent.name if parent else '?'}.{node.name.value}")

    def leave_object_field(self, *_: Any) -> None:
        self.keys.pop()

    def enter_string_value(self, node: StringValueNode, *_: Any) -> None:
        if self.in_definition or not self.keys:
            return  # a variable's default value is checked where the variable is used
        key = self.keys[-1]
        if len(node.value) > (limit := input_limit(key)):
            self.too_long.append((key, limit))

    def enter_variable(self, node: VariableNode, *_: Any) -> None:
        if self.in_definition or not self.keys:
            return
        self.usages.append(_Usage(node.name.value, self.keys[-1], self.type_info.get_input_type()))


def document_limits(schema: GraphQLSchema) -> None:
    """Add each text input's limit to its SDL description."""
    for type_ in schema.type_map.values():
        if type_.name.startswith("__"):
            continue
        if isinstance(type_, GraphQLInputObjectType):
            for name, field in type_.fields.items():
                if _is_text(field.type):
                    field.description = _say(field.description, input_limit(f"{type_.name}.{name}"))
        for fname, field in (getattr(type_, "fields", None) or {}).items():
            for aname, arg in (getattr(field, "args", None) or {}).items():
                if _is_text(arg.type):
                    arg.description = _say(arg.description,
                                           input_limit(f"{type_.name}.{fname}({aname})"))


def _is_text(type_: Any) -> bool:
    named = get_named_type(type_)
    return isinstance(named, GraphQLScalarType) and named.name == "String"


def _say(description: str | None, limit: int) -> str:
    note = f"At most {limit} characters."
    if description and note in description:
        return description
    return f"{description.rstrip()} {note}" if description else note
