"""Which networks act for her: named when she is registered, in force once confirmed.

A network's focal points may record and change her consent for her, so which networks those are
is hers to say: she confirms a named network with her own login; until she has one, two people
of the organisation that registered her confirm it (the two-person rule) and the network is told.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select

from app.access.context import AccessContext
from app.access.principal import PrincipalKind
from app.confirmations import service as confirmations
from app.consent.service import standing
from app.errors import BadInput, Conflict, NotFound
from app.her.notices import NoticeKind, tell_her
from app.notify import service as notify
from app.tables.confirmations import Confirmation, ConfirmationStatus
from app.tables.peacebuilders import Peacebuilder, PeacebuilderNetwork

CONFIRM_NETWORK = "network.link"


async def _link(ctx: AccessContext, pb_id: uuid.UUID, network_id: uuid.UUID) -> PeacebuilderNetwork:
    found = await ctx.session.scalar(select(PeacebuilderNetwork).where(
        PeacebuilderNetwork.peacebuilder_id == pb_id, PeacebuilderNetwork.org_id == network_id))
    if found is None:
        raise NotFound()
    return found


async def confirm(ctx: AccessContext, pb_id: uuid.UUID,
                  network_id: uuid.UUID) -> tuple[PeacebuilderNetwork, Confirmation | None]:
    """She confirms a network named for her (in force at once); a focal point of the
    organisation that registered her asks a second one to confirm it (while she has no login:
    that organisation may hold no live consent yet — her intake may be waiting for the network)."""
    p = ctx.principal
    if p.kind is PrincipalKind.PEACEBUILDER:
        if p.id != pb_id:
            raise NotFound()
        named = await _link(ctx, pb_id, network_id)
        if named.confirmed_at is None:
            await _confirm(ctx, named)
            pending = await confirmations.pending_of(ctx, action=CONFIRM_NETWORK,
                                                     target_id=named.id)
            if pending is not None:
                await confirmations.end(ctx, pending, ConfirmationStatus.CANCELLED)
        return named, None
    pb: Peacebuilder | None = None
    link: PeacebuilderNetwork | None = None
    if p.kind is PrincipalKind.USER and "focal_point" in p.roles:
        async with ctx.peek([pb_id]):  # the facts of the decision: who registered her
            pb = await ctx.session.get(Peacebuilder, pb_id)
            if pb is not None and pb.registered_by_org_id == ctx.org_id:
                link = await ctx.session.scalar(select(PeacebuilderNetwork).where(
                    PeacebuilderNetwork.peacebuilder_id == pb_id,
                    PeacebuilderNetwork.org_id == network_id))
    if pb is None or pb.registered_by_org_id != ctx.org_id:
        ctx.deny("network.confirm", target_type="Peacebuilder", target_id=pb_id,
                 reason="only she, or two focal points of the organisation that registered her")
        raise NotFound()
    if link is None:
        raise NotFound()
    if network_id == ctx.org_id:
        # An organisation confirming itself as her network would be widening its own power.
        ctx.deny("network.confirm", target_type="Peacebuilder", target_id=pb_id,
                 reason="an organisation cannot confirm itself as her network")
        raise BadInput("Only she can confirm your own organisation as her network.")
    if pb.has_login:
        ctx.deny("network.confirm", target_type="Peacebuilder", target_id=pb_id,
                 reason="she has her own login")
        raise BadInput("She has her own login: she confirms her networks herself.")
    if link.confirmed_at is not None:
        raise Conflict("This network is already confirmed.")
    if await confirmations.pending_of(ctx, action=CONFIRM_NETWORK, target_id=link.id):
        raise Conflict("A confirmation of this network is already waiting for a second person.")
    asked = await confirmations.request(ctx, action=CONFIRM_NETWORK, target_id=link.id,
                                        peacebuilder_id=pb_id)
    return link, asked


@confirmations.on_confirmed(CONFIRM_NETWORK)
async def _second_person_confirmed(ctx: AccessContext, c: Confirmation) -> None:
    assert c.peacebuilder_id is not None
    await ctx.reach([c.peacebuilder_id])  # decided: two people confirmed, write her link
    link = await ctx.session.get(PeacebuilderNetwork, c.target_id)
    pb = await ctx.session.get(Peacebuilder, c.peacebuilder_id)
    if link is None or pb is None:
        raise NotFound()
    if pb.has_login:
        raise BadInput("She has her own login now: she confirms her networks herself.")
    if link.confirmed_at is None:
        await _confirm(ctx, link)


async def _confirm(ctx: AccessContext, link: PeacebuilderNetwork) -> None:
    link.confirmed_at, link.confirmed_by = ctx.clock.now(), ctx.principal.subject
    ctx.record("network.confirm", target_type="Peacebuilder", target_id=link.peacebuilder_id,
               details={"network": str(link.org_id)})
    if ctx.principal.kind is not PrincipalKind.PEACEBUILDER:  # she is never the last to know
        await tell_her(ctx, link.peacebuilder_id, NoticeKind.NETWORK_CONFIRMED,
                       subject_id=link.id,
                       codes={"organisation": link.org_id, "by": ctx.principal.subject})
    # The network learns it may now act for her (her ID only).
    recipients = [(s, link.org_id) for s in await notify.focal_points(ctx.session, link.org_id)]
    await notify.notify(ctx, recipients, kind="network_confirmed", subject_id=link.peacebuilder_id,
                        case_id=None, at=ctx.clock.now(),
                        payload={"peacebuilder": str(link.peacebuilder_id)})


async def links(ctx: AccessContext, pb_id: uuid.UUID) -> list[PeacebuilderNetwork]:
    """Networks named for her, confirmed or not: for her, her networks and staff with standing."""
    await standing(ctx, pb_id, action="network.read")
    return list(await ctx.session.scalars(select(PeacebuilderNetwork).where(
        PeacebuilderNetwork.peacebuilder_id == pb_id).order_by(PeacebuilderNetwork.id)))
