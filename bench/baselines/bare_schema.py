"""Baseline (1): the same page from a bare strawberry schema over the same database.

No authentication, authorization, consent, redaction or access log: the tenant's newest cases by
`lead_org_id` (the caller's organisation, from BENCH_ORG_ID), loaded with the ORM and
`selectinload`, served by a Starlette endpoint that does what ours does with the document
(parse the JSON body, `schema.execute`, JSONResponse) with the same parser and validation
caches. The engine is `app.db.Database`, so pool size and SQLite pragmas are the same as ours.

    DATABASE_URL=... BENCH_ORG_ID=<uuid> uvicorn bench.baselines.bare_schema:create_app --factory
"""

from __future__ import annotations

import json
import os
import uuid
from datetime import datetime

import strawberry
from sqlalchemy import ForeignKey, String, Text, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, selectinload
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from strawberry.dataloader import DataLoader
from strawberry.extensions import ParserCache, ValidationCache

from app.db import Database, UTCDateTime
from app.tables.cases import CaseStatus as CaseStatusModel
from app.tables.cases import RiskLevel as RiskLevelModel
from app.tables.incidents import IncidentStatus as IncidentStatusModel
from app.tables.incidents import Severity as SeverityModel
from schema import ids


class Base(DeclarativeBase):
    pass


class PeacebuilderRow(Base):
    __tablename__ = "peacebuilders"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    pseudonym: Mapped[str] = mapped_column(String(64))


class IncidentRow(Base):
    __tablename__ = "incidents"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cases.id"))
    severity: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(20))
    description: Mapped[str | None] = mapped_column(Text)
    reported_at: Mapped[datetime] = mapped_column(UTCDateTime())


class CaseRow(Base):
    __tablename__ = "cases"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    peacebuilder_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("peacebuilders.id"))
    lead_org_id: Mapped[uuid.UUID] = mapped_column()
    status: Mapped[str] = mapped_column(String(20))
    risk_level: Mapped[str] = mapped_column(String(20))
    summary: Mapped[str | None] = mapped_column(Text)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime())
    peacebuilder: Mapped[PeacebuilderRow] = relationship(lazy="raise")
    incidents: Mapped[list[IncidentRow]] = relationship(
        lazy="raise", order_by=(IncidentRow.reported_at, IncidentRow.id))


CaseStatus = strawberry.enum(CaseStatusModel)
RiskLevel = strawberry.enum(RiskLevelModel)
IncidentStatus = strawberry.enum(IncidentStatusModel)
Severity = strawberry.enum(SeverityModel)


@strawberry.type
class Peacebuilder:
    pseudonym: str


async def _gate(info: strawberry.Info, pb: uuid.UUID, value: str | None) -> str | None:
    """The *shape* of a consent gate without its logic: an async resolver awaiting a
    per-request DataLoader (no SQL). Used by the ladder to price the pattern itself."""
    released = await info.context["released"].load(pb)
    return value if "incident_details" in released else None


@strawberry.type
class Incident:
    id: strawberry.ID
    status: IncidentStatus  # type: ignore[valid-type]
    severity: Severity  # type: ignore[valid-type]
    description: str | None
    _pb: strawberry.Private[uuid.UUID]

    @strawberry.field
    async def description_async(self, info: strawberry.Info) -> str | None:
        return await _gate(info, self._pb, self.description)


@strawberry.type
class Case:
    id: strawberry.ID
    status: CaseStatus  # type: ignore[valid-type]
    risk_level: RiskLevel  # type: ignore[valid-type]
    summary: str | None
    peacebuilder: Peacebuilder
    incidents: list[Incident]
    _pb: strawberry.Private[uuid.UUID]

    @strawberry.field
    async def summary_async(self, info: strawberry.Info) -> str | None:
        return await _gate(info, self._pb, self.summary)

    @classmethod
    def from_row(cls, c: CaseRow) -> Case:
        return cls(
            id=strawberry.ID(ids.encode("Case", c.id)), status=CaseStatusModel(c.status),
            risk_level=RiskLevelModel(c.risk_level), summary=c.summary,
            peacebuilder=Peacebuilder(pseudonym=c.peacebuilder.pseudonym),
            incidents=[Incident(id=strawberry.ID(ids.encode("Incident", i.id)),
                                status=IncidentStatusModel(i.status),
                                severity=SeverityModel(i.severity), description=i.description,
                                _pb=c.peacebuilder_id)
                       for i in c.incidents], _pb=c.peacebuilder_id)


@strawberry.type
class CaseEdge:
    node: Case


@strawberry.type
class CaseConnection:
    edges: list[CaseEdge]


def _loaded(query):  # type: ignore[no-untyped-def]
    return query.options(selectinload(CaseRow.peacebuilder), selectinload(CaseRow.incidents))


@strawberry.type
class Query:
    @strawberry.field
    async def cases(self, info: strawberry.Info, first: int = 20) -> CaseConnection:
        db: Database = info.context["db"]
        async with db.sessionmaker() as session:
            rows = await session.scalars(_loaded(
                select(CaseRow).where(CaseRow.lead_org_id == info.context["org"])
                .order_by(CaseRow.opened_at.desc(), CaseRow.id.desc()).limit(first)))
            return CaseConnection(edges=[CaseEdge(node=Case.from_row(c)) for c in rows])

    @strawberry.field
    async def case(self, info: strawberry.Info, id: strawberry.ID) -> Case | None:
        db: Database = info.context["db"]
        case_id = ids.decode(id, "Case")
        async with db.sessionmaker() as session:
            row = await session.scalar(_loaded(select(CaseRow).where(
                CaseRow.id == case_id, CaseRow.lead_org_id == info.context["org"])))
            return Case.from_row(row) if row else None


schema = strawberry.Schema(
    query=Query,
    extensions=[lambda: ParserCache(maxsize=512), lambda: ValidationCache(maxsize=512)])


async def _released(keys: list[uuid.UUID]) -> list[frozenset[str]]:
    return [frozenset({"incident_details"}) for _ in keys]


def create_app(database_url: str | None = None, org_id: str | None = None) -> Starlette:
    db = Database(database_url or os.environ["DATABASE_URL"])
    org = uuid.UUID(org_id or os.environ["BENCH_ORG_ID"])

    async def graphql(request: Request) -> Response:
        data = json.loads(await request.body())
        released = DataLoader(load_fn=_released)
        result = await schema.execute(data["query"], variable_values=data.get("variables"),
                                      context_value={"db": db, "org": org, "released": released})
        body: dict[str, object] = {"data": result.data}
        if result.errors:
            body["errors"] = [{"message": e.message} for e in result.errors]
        return JSONResponse(body)

    async def healthz(request: Request) -> Response:
        return Response("ok")

    app = Starlette(routes=[Route("/graphql", graphql, methods=["POST"]),
                            Route("/healthz", healthz)])
    app.state.db = db
    return app
