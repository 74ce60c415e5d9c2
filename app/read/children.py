"""Rows below a case (incidents, measures, proceedings, timeline events), read per level for all
the cases of a page at once, under the cases' decision — declared, not coded per type.

Adding a consent-gated kind of row below a case is one `Child` here (its table, the category
that lists it, its sealed columns with their categories) and one GraphQL type whose gated fields
are `schema.gated.gated(column, category)`; no gate code is written for it.
"""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Uuid, any_, bindparam, literal, null, select, tuple_
from sqlalchemy.dialects.postgresql import ARRAY

from app.access.context import AccessContext
from app.access.gate import Gate, Want
from app.access.visibility import Mode
from app.checkins import refs as checkin_refs
from app.db import rows as db_rows
from app.errors import ResponseTooLarge
from app.her import keys as pb_keys
from app.her import sealing
from app.justice import refs as justice_refs
from app.read.columns import fast_uuids
from app.risk.refs import assessment_ref, plan_ref, threat_ref
from app.tables.categories import (
    CHECKIN_FIELDS,
    INCIDENT_FIELDS,
    PROCEEDING_CATEGORY,
    RESPONSE_CATEGORY,
    RISK_FIELDS,
    DataCategory,
)
from app.tables.checkins import CheckIn, CheckInSchedule, SecurityAssessment
from app.tables.consultations import Consultation, ConsultationFollowUp
from app.tables.incidents import CaseEvent, Incident, Measure, Proceeding
from app.tables.justice import Detention, DetentionCheck, DetentionVisit, Hearing
from app.tables.risk import RiskAssessment, RiskThreat

DETAILS = DataCategory.INCIDENT_DETAILS.value
LEGAL = DataCategory.LEGAL.value
RISK = DataCategory.RISK_ASSESSMENT.value


def _same(stored: Any) -> str | None:
    return stored  # type: ignore[no-any-return]


def _sorted_json(text: str) -> str:
    return json.dumps(json.loads(text), sort_keys=True)


@dataclass(frozen=True)
class Sealed:
    """A sealed column: its category, where its ciphertext is bound, and how to read it."""

    category: str
    ref: Callable[[Any, uuid.UUID], sealing.Ref]
    token: Callable[[Any], str | None] = _same
    shape: Callable[[str], str] = str
    field: str | None = None  # the GraphQL field, when it is not the column's name


@dataclass(frozen=True)
class Child:
    model: Any
    order: tuple[Any, ...]
    # Which category a row needs to be listed at all (one for the kind, or per row).
    listed_by: Callable[[Any], str]
    sealed: dict[str, Sealed] = field(default_factory=dict)
    # Where else below a case the client may select these rows (paths of field names), e.g. a
    # threat under `riskAssessments { threats }`: what is selected there is loaded too.
    via: tuple[tuple[str, ...], ...] = ()
    # The clear columns each field of its GraphQL type reads (snake-case field -> columns), and
    # those every row carries (IDs, what sealed values are bound to, what `listed_by` reads). For
    # a GraphQL selection (`Want.exact`) naming only fields listed here, the other clear columns
    # come back NULL (no conversion per row of dates and IDs nobody asked for); any field not
    # listed loads every column. None: always every column.
    reads: dict[str, tuple[str, ...]] | None = None
    always: tuple[str, ...] = ()

    def opened(self, want: Want) -> list[str]:
        """The sealed columns the client selected (only those are read and opened)."""
        return [c for c, s in self.sealed.items() if (s.field or c) in want]

    def needed(self, want: Want) -> set[str] | None:
        """The clear columns this selection reads, or None for all of them."""
        if self.reads is None or not want.exact:
            return None
        sealed_fields = {s.field or c for c, s in self.sealed.items()}
        found = set(self.always)
        for name in want.fields:
            if name in sealed_fields:
                continue
            columns = self.reads.get(name)
            if columns is None:
                return None
            found.update(columns)
        return found

    def columns(self, want: Want) -> list[Any]:
        wanted = self.opened(want)
        needed = self.needed(want)
        return fast_uuids(c if needed is None or c.name in needed or c.name in wanted
                          else null().label(c.name) for c in self.model.__table__.c
                          if c.name not in self.sealed or c.name in wanted)


# AccessContext.cache key: the response-size limit of the request (set by the GraphQL edge).
RESPONSE_BUDGET = "response_budget"
# Prefix, nonce and tag of a sealed value (base64 of the rest is 4/3 of the plaintext).
SEAL_OVERHEAD = 64


def _incident(name: str) -> Sealed:
    return Sealed(INCIDENT_FIELDS[name].value, functools.partial(sealing.incident_ref, field=name))


def _risk_sealed(ref: Callable[[Any, uuid.UUID, str], sealing.Ref], name: str) -> Sealed:
    return Sealed(RISK, lambda r, pb: ref(r, pb, name))


# What a timeline event's subject belongs to: the event shows only with that category.
EVENT_CATEGORIES = {"incident": DETAILS, "measure": DETAILS, "referral": DETAILS,
                    "attachment": DETAILS, "detention": DataCategory.LEGAL.value,
                    "investigation": DataCategory.LEGAL.value,
                    **dict.fromkeys(("hearing", "detention_watch", "detention_check",
                                     "detention_visit"), DataCategory.LEGAL.value),
                    **dict.fromkeys(("risk_assessment", "risk_review", "risk_reassessment"),
                                    RISK),
                    **dict.fromkeys(("check_in_schedule", "check_in", "security_assessment",
                                     "consultation", "consultation_follow_up", "follow_up"),
                                    DataCategory.RISK_ASSESSMENT.value)}
RISK = DataCategory.RISK_ASSESSMENT.value


def _risk(table: str) -> dict[str, Sealed]:
    """The sealed columns of a check-in, security or consultation table (CHECKIN_FIELDS)."""
    return {column: Sealed(category.value, checkin_refs.ref(table, column))
            for column, category in CHECKIN_FIELDS[table].items()}



CHILDREN: dict[str, Child] = {
    "incidents": Child(Incident, (Incident.reported_at, Incident.id), lambda r: DETAILS,
                       {name: _incident(name) for name in INCIDENT_FIELDS},
                       reads={**{name: (name,) for name in (
                           "type", "severity", "status", "occurred_at", "reported_at",
                           "reported_by", "reported_via", "acknowledged_at")},
                              "acknowledgement_deadline": ("ack_deadline",), "id": (),
                              "withheld": (), "attachments": (), "__typename": ()},
                       always=("id", "case_id", "reporting_org_id")),
    "measures": Child(Measure, (Measure.created_at, Measure.id),
                      lambda r: RESPONSE_CATEGORY.value,
                      {"description": Sealed(RESPONSE_CATEGORY.value, sealing.measure_ref),
                       **{name: _risk_sealed(plan_ref, name)
                          for name in ("funding_source", "covered_family")}}),
    "proceedings": Child(Proceeding, (Proceeding.created_at, Proceeding.id),
                         lambda r: PROCEEDING_CATEGORY.value,
                         {"data": Sealed(PROCEEDING_CATEGORY.value, sealing.proceeding_ref,
                                         sealing.json_token, _sorted_json, "details")}),
    "hearings": Child(Hearing, (Hearing.scheduled_at, Hearing.id), lambda r: LEGAL,
                      {"outcome": Sealed(LEGAL, justice_refs.hearing_ref)}),
    "detentions": Child(Detention, (Detention.detained_at, Detention.id), lambda r: LEGAL,
                        {"place": Sealed(LEGAL, justice_refs.detention_ref)}),
    "detention_checks": Child(DetentionCheck, (DetentionCheck.due_at, DetentionCheck.id),
                              lambda r: LEGAL),
    "detention_visits": Child(DetentionVisit, (DetentionVisit.visited_at, DetentionVisit.id),
                              lambda r: LEGAL, {"notes": Sealed(LEGAL, justice_refs.visit_ref)}),
    "risk_assessments": Child(
        RiskAssessment, (RiskAssessment.created_at, RiskAssessment.id), lambda r: RISK,
        {name: _risk_sealed(assessment_ref, name) for name in RISK_FIELDS["risk_assessments"]},
        via=(("current_risk_assessment",),)),
    "risk_threats": Child(
        RiskThreat, (RiskThreat.assessment_id, RiskThreat.position, RiskThreat.id),
        lambda r: RISK,
        {name: _risk_sealed(threat_ref, name) for name in RISK_FIELDS["risk_threats"]},
        via=(("risk_assessments", "threats"), ("current_risk_assessment", "threats"))),
    "check_in_schedules": Child(CheckInSchedule, (CheckInSchedule.created_at, CheckInSchedule.id),
                                lambda r: RISK, _risk("check_in_schedules")),
    "check_ins": Child(CheckIn, (CheckIn.due_at, CheckIn.id), lambda r: RISK),
    "security_assessments": Child(SecurityAssessment,
                                  (SecurityAssessment.assessed_at, SecurityAssessment.id),
                                  lambda r: RISK, _risk("security_assessments")),
    "consultations": Child(Consultation, (Consultation.held_at, Consultation.id),
                           lambda r: RISK, _risk("consultations")),
    # Their follow-ups as tasks: IDs, dates and codes (the text is the consultation's, sealed).
    "consultation_follow_ups": Child(
        ConsultationFollowUp, (ConsultationFollowUp.created_at, ConsultationFollowUp.position,
                               ConsultationFollowUp.id), lambda r: RISK),
    "timeline": Child(CaseEvent, (CaseEvent.at, CaseEvent.id),
                      lambda r: EVENT_CATEGORIES.get(r.kind.split(".", 1)[0], DETAILS)),
}


def wanted(name: str, want: Want) -> Want | None:
    """What the client selected of the `name` rows: under its own field and under any `via`
    path (merged), or None when nowhere."""
    found = [w for w in [want.child(name)] if w is not None]
    for path in CHILDREN[name].via:
        below: Want | None = want
        for step in path:
            below = below.child(step) if below is not None else None
        if below is not None:
            found.append(below)
    if not found:
        return None
    return found[0] if len(found) == 1 else _merge(found)


def _merge(wants: list[Want]) -> Want:
    names = frozenset().union(*(w.fields for w in wants))
    keys = {k for w in wants for k in w.children}
    return Want(names, {k: _merge([w.children[k] for w in wants if k in w.children])
                        for k in keys})


@dataclass(slots=True)
class RowView:
    """One row below a case with its decision (the case's) and its opened sealed values."""

    row: Any
    gate: Gate


def listed(ctx: AccessContext, released: frozenset[str] | None, category: str) -> bool:
    """Rows of a kind are listed to whoever holds their category (she sees them all)."""
    return ctx.mode is Mode.SELF or (released is not None and category in released)


# The case IDs of a level, a parameter: each level's statement is built once per kind and
# selection (`_statement`), and run with the request's cases. PostgreSQL takes them as one array
# (`= ANY`, planned as `IN (...)` is): no list of parameters rendered into the SQL per request,
# and one prepared statement whatever the page's length.
CASE_IDS: Any = bindparam("case_ids", expanding=True, required=True)
CASE_ID_ARRAY: Any = bindparam("case_ids", type_=ARRAY(Uuid()), required=True)
_STATEMENTS: dict[tuple[str, str, tuple[tuple[str, str], ...]], Any] = {}


def _of_cases(model: Any, dialect: str) -> Any:
    if dialect == "postgresql":
        return model.case_id == any_(CASE_ID_ARRAY)
    return model.case_id.in_(CASE_IDS)


def _statement(name: str, child: Child, want: Want, dialect: str) -> Any:
    columns = child.columns(want)
    # A column left out (NULL) has the name of the column it stands for: keyed apart.
    cache_key = (name, dialect, tuple((c.name, type(c.type).__name__) for c in columns))
    found = _STATEMENTS.get(cache_key)
    if found is None:
        found = (select(*columns).where(_of_cases(child.model, dialect))
                 .order_by(*child.order))
        _STATEMENTS[cache_key] = found
    return found


async def of_cases(ctx: AccessContext, name: str, gates: dict[uuid.UUID, Gate],
                   want: Want, *, after: tuple[Any, ...] | None = None,
                   limit: int | None = None) -> dict[uuid.UUID, list[RowView]]:
    """The `name` rows of decided cases (case ID -> its gate), in order: one statement.
    `after` (the order key of the last row already read) and `limit` read them in batches."""
    child = CHILDREN[name]
    out: dict[uuid.UUID, list[RowView]] = {cid: [] for cid in gates}
    shown = [cid for cid, gate in gates.items() if gate.released is not None]
    if not shown:
        return out
    model = child.model
    dialect = ctx.db.dialect
    if after is None and limit is None:
        query = _statement(name, child, want, dialect)
    else:
        query = select(*child.columns(want)).where(_of_cases(model, dialect))
        if after is not None:
            query = query.where(tuple_(*child.order) > tuple_(*(
                literal(value, column.type)
                for value, column in zip(after, child.order, strict=True))))
        query = query.order_by(*child.order)
        if limit is not None:
            query = query.limit(limit)
    rows = (await db_rows(ctx.session, query, {"case_ids": shown})).all()
    opened = child.opened(want)
    # The rows listed to this caller, with their case's decision (decided once, used twice):
    # `listed` asked once per case and category, not per row.
    kept: list[tuple[Any, Gate]] = []
    verdicts: dict[tuple[int, str], bool] = {}
    shown_gates: dict[int, Gate] = {}  # the cases with a row listed (by their gate)
    listed_by = child.listed_by
    for row in rows:
        gate = gates[row.case_id]
        category = listed_by(row)
        verdict = verdicts.get((id(gate), category))
        if verdict is None:
            verdict = verdicts[(id(gate), category)] = listed(ctx, gate.released, category)
        if verdict:
            kept.append((row, gate))
            shown_gates[id(gate)] = gate
    budget = ctx.cache.get(RESPONSE_BUDGET)
    if budget is not None and opened:
        # The texts selected are at least this long once opened: when they alone pass the
        # response-size limit, refuse before opening any (decision 0018).
        least = 0
        for c in opened:
            category = child.sealed[c].category
            for row, gate in kept:
                value = getattr(row, c)
                if (isinstance(value, str) and gate.released is not None
                        and category in gate.released and len(value) > SEAL_OVERHEAD):
                    least += (len(value) - SEAL_OVERHEAD) * 3 // 4
        if least > budget:
            raise ResponseTooLarge(budget)
    if not opened:
        for row, gate in kept:
            out[row.case_id].append(RowView(row, Gate(gate.peacebuilder_id, gate.released)))
        return out
    # Her key only for the rows listed (only those are opened).
    keys = (await pb_keys.of(ctx, list({g.peacebuilder_id for g in shown_gates.values()}))
            if kept else {})
    sealed = [(c, child.sealed[c]) for c in opened]
    for row, gate in kept:
        out[row.case_id].append(_view(sealed, gate, row, keys))
    return out


def view(child: Child, case_gate: Gate, row: Any, opened: list[str],
         keys: dict[uuid.UUID, bytes | None]) -> RowView:
    return _view([(c, child.sealed[c]) for c in opened], case_gate, row, keys)


def _view(sealed: list[tuple[str, Sealed]], case_gate: Gate, row: Any,
          keys: dict[uuid.UUID, bytes | None]) -> RowView:
    pb = case_gate.peacebuilder_id
    gate = Gate(pb, case_gate.released)
    sealing.fill(gate, keys.get(pb), [
        (c, s.category, s.ref(row, pb), getattr(row, c) if s.token is _same
         else s.token(getattr(row, c))) for c, s in sealed])
    for c, s in sealed:
        if s.shape is not str and gate.values.get(c) is not None:
            gate.values[c] = s.shape(gate.values[c])  # type: ignore[arg-type]
    return RowView(row, gate)


async def written(ctx: AccessContext, name: str, row: Any, want: Want) -> RowView:
    """A row a mutation of this request wrote or moved, decided like any read."""
    from app.tables.cases import Case

    pb = await ctx.session.scalar(select(Case.peacebuilder_id).where(Case.id == row.case_id))
    assert pb is not None
    child = CHILDREN[name]
    opened = child.opened(want)
    keys = await pb_keys.of(ctx, [pb]) if opened else {}
    return view(child, Gate(pb, (await ctx.released([pb])).get(pb)), row, opened, keys)
