"""Queries: her own view, grants on a record, consent receipts."""

from __future__ import annotations

from typing import Annotated

import strawberry

from app.consent import service as consent
from app.errors import ResponseTooLarge
from app.peacebuilders import plain, self_service
from app.read import copy as her_copy
from schema import ids, permissions
from schema.cases.types import Case
from schema.consent.types import (
    BreakGlass,
    ConsentGrant,
    DataRequest,
    Erasure,
    NetworkLink,
    Notice,
)
from schema.context import Info
from schema.gated import want_of
from schema.incidents.types import Approval
from schema.peacebuilders.types import Peacebuilder
from schema.risk.types import PlainRiskSummary


@strawberry.type(description="One of her cases in plain language (her own view only).")
class PlainCaseSummary:
    case_id: strawberry.ID = strawberry.field(description="The case.")
    language: str = strawberry.field(description="The language the lines are in.")
    lines: list[str] = strawberry.field(description="Sentences, where the case stands first.")


@strawberry.type(description="Her own view of her record, signed in herself. Needs no purpose.")
class Me:
    @strawberry.field(description="Her record, with every field of hers.")
    async def peacebuilder(self, info: Info) -> Peacebuilder:
        from app.read import decoy
        from app.read import peacebuilders as pb_read

        duress_of = info.context.access.principal.duress_of
        if duress_of is not None:  # an empty-looking record, under her own ID as her token says
            shown = Peacebuilder.from_view(await info.context.loaders.call(
                decoy.decoy_view, info.context.access))
            shown.id = strawberry.ID(ids.encode("Peacebuilder", duress_of))
            return shown
        return Peacebuilder.from_view(await info.context.loaders.call(
            pb_read.one, info.context.access, self_service.my_id(info.context.access),
            want_of(info)))

    @strawberry.field(description="The status of each of her cases.")
    async def cases(self, info: Info) -> list[Case]:
        from app.read import cases as case_read

        views = await info.context.loaders.call(case_read.mine, info.context.access,
                                                want_of(info))
        return [Case.from_view(v) for v in views]

    @strawberry.field(description=(
        "Each of her cases in plain language, in her preferred language unless `language` is "
        "given (en, fr, es, ar, sw; English otherwise): where it stands, why it closed and its "
        "follow-up plan, the measures with their status and owner organisation, referrals, and "
        "when a closed case's details will be erased. Codes, dates and organisation names only "
        "(no staff notes); her own cases only. Logged."))
    async def case_overview(
        self,
        info: Info,
        language: Annotated[str | None, strawberry.argument(description="Language tag.")] = None,
    ) -> list[PlainCaseSummary]:
        found = await info.context.loaders.call(plain.overview, info.context.access, language)
        return [PlainCaseSummary(case_id=strawberry.ID(ids.encode("Case", c.case_id)),
                                 language=c.language, lines=c.lines) for c in found]

    @strawberry.field(description=(
        "Her joint risk assessments and protection plan in plain language, in her preferred "
        "language unless `language` is given (en, fr, es, ar, sw; English otherwise): the "
        "assessment in "
        "force (level, who answered, review date), one waiting for her answer, and the plan's "
        "measures with the threat each addresses. Codes, dates and organisation names only; "
        "the texts are in `cases { riskAssessments }`. Logged."))
    async def risk_overview(
        self,
        info: Info,
        language: Annotated[str | None, strawberry.argument(description="Language tag.")] = None,
    ) -> list[PlainRiskSummary]:
        from app.risk import plain as risk_plain

        found = await info.context.loaders.call(risk_plain.overview, info.context.access,
                                                language)
        return [PlainRiskSummary(case_id=strawberry.ID(ids.encode("Case", c.case_id)),
                                 language=c.language, lines=c.lines) for c in found]

    @strawberry.field(description=(
        "Her safety arrangements in plain language, in her preferred language unless "
        "`language` is given (en, fr, es, ar, sw; English otherwise): each check-in schedule "
        "agreed with her "
        "(how often, how, the next one due, any missed and what the organisation will do), her "
        "digital security assessments and their follow-up dates, and her consultations (when, "
        "who met). Codes, dates and organisation names only; her own cases only. Logged."))
    async def safety_overview(
        self,
        info: Info,
        language: Annotated[str | None, strawberry.argument(description="Language tag.")] = None,
    ) -> list[PlainCaseSummary]:
        from app.checkins import plain as safety_plain

        found = await info.context.loaders.call(safety_plain.overview, info.context.access,
                                                language)
        return [PlainCaseSummary(case_id=strawberry.ID(ids.encode("Case", c.case_id)),
                                 language=c.language, lines=c.lines) for c in found]

    @strawberry.field(description="All her grants, live and ended.")
    async def consent_grants(self, info: Info) -> list[ConsentGrant]:
        return [ConsentGrant.from_model(g) for g in
                await info.context.loaders.call(self_service.my_grants, info.context.access)]

    @strawberry.field(description=(
        "What she has been told, oldest first: every change that concerns her (incidents "
        "acknowledged, escalated or changed; measures done or not; referrals accepted or "
        "declined; her case closed or reopened; consent recorded, confirmed or extended by "
        "others; a grant about to end; new working-group members; an approval used; "
        "break-glass opened and ended; networks confirmed; erasures scheduled; her sign-in). "
        "Each in her language. Only she, signed in herself."))
    async def notices(
        self, info: Info,
        after: Annotated[str | None, strawberry.argument(description=(
            "A notice's cursor: only the notices after it."))] = None,
        first: Annotated[int | None, strawberry.argument(description=(
            "At most this many (0 to 100); all when not given."))] = None,
        language: Annotated[str | None, strawberry.argument(description=(
            "en, fr, es, ar or sw instead of her preferred language."))] = None,
    ) -> list[Notice]:
        views = await info.context.loaders.call(self_service.my_notices, info.context.access,
                                                after=after, first=first, language=language)
        return [Notice.from_view(v) for v in views]

    @strawberry.field(description="Every break-glass access to her data, open or ended.")
    async def break_glass(self, info: Info) -> list[BreakGlass]:
        return [BreakGlass.from_model(b) for b in
                await info.context.loaders.call(self_service.my_break_glass, info.context.access)]

    @strawberry.field(
        description="A copy of all her data as a JSON document (logged as an export). Refused "
                    "(QUERY_LIMIT_EXCEEDED) when larger than the response-size limit: download "
                    "it from `GET /me/data-copy` instead, streamed, whatever its size.",
        deprecation_reason="Download it from GET /me/data-copy (streamed, any size).")
    async def data_copy(self, info: Info) -> str:
        limits = getattr(info.schema, "limits", None)
        try:
            return await info.context.loaders.call(
                her_copy.data_copy, info.context.access,
                max_bytes=limits.max_response_bytes if limits is not None else None)
        except ResponseTooLarge as exc:
            info.context.stop(exc)
            raise

    @strawberry.field(description="The networks named for her: confirm one with confirmNetwork.")
    async def networks(self, info: Info) -> list[NetworkLink]:
        from app.peacebuilders import networks

        links = await info.context.loaders.call(
            networks.links, info.context.access, self_service.my_id(info.context.access))
        return [NetworkLink.from_model(link) for link in links]

    @strawberry.field(description="Requests to erase her data, and where each stands.")
    async def erasures(self, info: Info) -> list[Erasure]:
        from app.peacebuilders import erasure

        found = await info.context.loaders.call(
            erasure.of, info.context.access, self_service.my_id(info.context.access))
        return [Erasure.from_model(e) for e in found]

    @strawberry.field(description=(
        "Every approval of a public act she gave (or her network recorded for her), with what "
        "it covers (act, text or outlet, the organisation) and where it stands. Herself only; "
        "logged."))
    async def approvals(self, info: Info) -> list[Approval]:
        from app.incidents import response

        rows = await info.context.loaders.call(response.my_approvals, info.context.access)
        return [Approval.from_model(a, text) for a, text in rows]

    @strawberry.field(description=(
        "Her correction requests: where each stands, its deadline, and the answer (status and "
        "reason) once given. Herself only."))
    async def data_requests(self, info: Info) -> list[DataRequest]:
        from app.corrections import service as corrections
        from app.peacebuilders import self_service as ss

        rows = await info.context.loaders.call(ss.my_requests, info.context.access)
        reasons = await info.context.loaders.call(corrections.opened_reasons, info.context.access,
                                                  rows)
        return [DataRequest.from_model(r, reasons.get(r.id)) for r in rows]


@strawberry.type
class ConsentQueries:
    @permissions.query(
        "Her own view, when the caller is a peacebuilder signed in herself; null for anyone else.",
        purpose=True)
    def me(self, info: Info) -> Me | None:
        return Me() if info.context.access.principal.kind.value == "peacebuilder" else None

    @permissions.query(
        "Her grants, pending, live and ended: all of them for her and a focal point of a network "
        "she confirmed; for staff who may see her record, only the grants naming their "
        "organisation (or a working group it was covered in).",
        args={
            "peacebuilder_id": "Her global ID.",
        })
    async def consent_grants(self, info: Info, peacebuilder_id: strawberry.ID) -> list[ConsentGrant]:
        pb_id = ids.decode(peacebuilder_id, "Peacebuilder", "peacebuilderId")
        grants = await info.context.loaders.call(consent.grants_for, info.context.access, pb_id)
        return [ConsentGrant.from_model(g) for g in grants]

    @permissions.query(
        "A human-readable consent receipt (plain text), in her preferred language unless "
        "`language` is given (en, fr, es, ar, sw). NOT_FOUND for a grant you may not see.",
        args={
            "grant_id": "The grant's global ID.",
        })
    async def consent_receipt(
        self,
        info: Info,
        grant_id: strawberry.ID,
        language: Annotated[str | None, strawberry.argument(description="Language tag.")] = None,
    ) -> str:
        return await info.context.loaders.call(
            consent.receipt, info.context.access, ids.decode(grant_id, "ConsentGrant", "grantId"),
            language)
