"""An attachment by its node ID: its metadata as listed on its incident, the incident read
through the read path (decided once, like every record about her)."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import load_only

from app.access.context import AccessContext
from app.access.gate import Want
from app.errors import NotFound
from app.incidents.attachments import METADATA
from app.read import cases as case_read
from app.tables.incidents import Attachment


async def one(ctx: AccessContext, attachment_id: uuid.UUID) -> Attachment:
    """An attachment's metadata (`node(id:)`): as listed on its incident (the incident visible,
    the file's category released), else not found."""
    row = await ctx.session.scalar(select(Attachment).options(load_only(*METADATA[1:]))
                                   .where(Attachment.id == attachment_id))
    if row is None:
        raise NotFound()
    incident = await case_read.below(ctx, "incidents", row.incident_id, Want(frozenset({"id"})))
    if not incident.gate.releases(row.category):
        raise NotFound()
    ctx.note_read(incident.gate.peacebuilder_id, row.category)
    return row
