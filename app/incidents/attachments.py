"""Evidence files on an incident: size-limited, content type checked by its bytes, encrypted at
rest with HER data key (AES-256-GCM; the associated data binds each ciphertext to its
organisation, incident and attachment, so ciphertexts cannot be swapped), readable only with the
data category they were filed under, and unreadable once her data is erased (crypto-shredding).

Files sealed before this used a service key (`attachment.key` in the data directory); they are
not readable any more (see docs/decisions/0011-encryption-at-rest.md)."""

from __future__ import annotations

import hashlib
import uuid

from sqlalchemy import select
from sqlalchemy.orm import load_only

from app import crypto
from app.access.context import AccessContext
from app.errors import AppError, BadInput, NotFound
from app.her import keys as pb_keys
from app.her import sealing
from app.incidents import service as incidents
from app.notify import service as notify
from app.tables.categories import DataCategory
from app.tables.incidents import Attachment

MAX_BYTES = 5 * 1024 * 1024


class IntegrityError(AppError):
    code = "INTEGRITY_ERROR"
    message = "The file failed its integrity check."


class Erased(AppError):
    code = "ERASED"
    message = "This file was erased with her data."


SIGNATURES = {
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "application/pdf": (b"%PDF-",),
}
TEXT = "text/plain"


def sniff(data: bytes) -> str:
    """The type of a file sent without a usable one (`curl -F` sends application/octet-stream
    for an unknown extension): a known signature, else UTF-8 text; else octet-stream, refused."""
    for kind, signatures in SIGNATURES.items():
        if data.startswith(signatures):
            return kind
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return "application/octet-stream"
    return TEXT


def check_content(content_type: str, data: bytes) -> str:
    if not data:
        raise BadInput("The file is empty.", field="file")
    if len(data) > MAX_BYTES:
        raise BadInput(f"Files are limited to {MAX_BYTES // (1024 * 1024)} MiB.", field="file")
    kind = content_type.split(";")[0].strip().lower()
    if kind == TEXT:
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadInput("Text files must be UTF-8.", field="file") from exc
        return kind
    if kind not in SIGNATURES:
        raise BadInput("Allowed: PNG, JPEG, PDF or plain text.", field="contentType")
    if not data.startswith(SIGNATURES[kind]):
        raise BadInput("The file's content does not match its declared type.", field="file")
    return kind


async def upload(ctx: AccessContext, incident_id: uuid.UUID, content_type: str,
                 data: bytes, category: str = DataCategory.INCIDENT_DETAILS.value) -> Attachment:
    """File evidence on an incident the caller may see: staff under her consent to the category,
    she herself on her own incidents (another woman's is not found). Sealed with her key; the
    plaintext's SHA-256 is kept for the chain of custody."""
    await ctx.require("incident", "create")
    incident = await incidents.get(ctx, incident_id)
    if category not in {c.value for c in DataCategory}:
        raise BadInput("Unknown data category.", field="category")
    from app.tables.cases import Case

    case = await ctx.session.get(Case, incident.case_id)
    assert case is not None
    if category not in (await ctx.released([case.peacebuilder_id])).get(case.peacebuilder_id, ()):
        raise BadInput("Her consent does not let you file evidence in this category.",
                       field="category")
    kind = check_content(content_type, data)
    attachment_id = uuid.uuid4()
    data_key = await sealing.data_key(ctx, case.peacebuilder_id, "file")
    sealed = crypto.seal_bytes(
        data_key, sealing.attachment_ref(case.peacebuilder_id, incident, attachment_id).aad, data)
    digest = hashlib.sha256(data).hexdigest()
    attachment = Attachment(id=attachment_id, incident_id=incident.id, category=category,
                            content_type=kind, size=len(data), ciphertext=sealed,
                            uploaded_by=ctx.principal.subject, uploaded_at=ctx.clock.now(),
                            org_id=ctx.org_id, sha256=digest)
    ctx.session.add(attachment)
    await ctx.session.flush()
    incidents.event(ctx, incident.case_id, "attachment.added", attachment.id,
                    {"incident": str(incident.id), "category": category})
    ctx.record("attachment.upload", target_type="Incident", target_id=incident.id,
               details={"attachment": str(attachment.id), "category": category, "bytes": len(data),
                        "sha256": digest, "peacebuilder": str(case.peacebuilder_id),
                        "by": "herself" if ctx.herself else "organisation"})
    if ctx.herself:  # her evidence reaches the lead organisation's focal points (IDs only)
        await notify.notify(ctx, [(s, case.lead_org_id) for s in await notify.focal_points(
            ctx.session, case.lead_org_id)], kind="evidence_added", subject_id=attachment.id,
            case_id=case.id, at=ctx.clock.now(),
            payload={"attachment": str(attachment.id), "incident": str(incident.id),
                     "case": str(case.id)})
    return attachment


METADATA = (Attachment.id, Attachment.incident_id, Attachment.category, Attachment.content_type,
            Attachment.size, Attachment.uploaded_at, Attachment.uploaded_by, Attachment.org_id,
            Attachment.sha256)


async def of_incidents(ctx: AccessContext,
                       incident_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[Attachment]]:
    """The attachments' metadata (never their content) of incidents the caller was already
    decided to see (one statement); each field filters them by the incident's released
    categories."""
    rows = await ctx.session.scalars(
        select(Attachment).options(load_only(*METADATA[1:]))
        .where(Attachment.incident_id.in_(incident_ids))
        .order_by(Attachment.uploaded_at, Attachment.id))
    out: dict[uuid.UUID, list[Attachment]] = {i: [] for i in incident_ids}
    for row in rows:
        out[row.incident_id].append(row)
    return out


async def download(ctx: AccessContext, attachment_id: uuid.UUID) -> tuple[str, bytes]:
    attachment = await ctx.session.get(Attachment, attachment_id)
    if attachment is None:
        raise NotFound()
    incident = await incidents.get(ctx, attachment.incident_id)
    from app.tables.cases import Case

    case = await ctx.session.get(Case, incident.case_id)
    assert case is not None
    if attachment.category not in (await ctx.released([case.peacebuilder_id])).get(
            case.peacebuilder_id, ()):
        ctx.deny("attachment.read", target_type="Incident", target_id=incident.id,
                 reason=ctx.redaction_reason().value,
                 details={"peacebuilder": str(case.peacebuilder_id)})
        raise NotFound()
    data_key = (await pb_keys.of(ctx, [case.peacebuilder_id]))[case.peacebuilder_id]
    if data_key is None:
        raise Erased()
    ref = sealing.attachment_ref(case.peacebuilder_id, incident, attachment.id)
    try:
        data = crypto.open_bytes(data_key, ref.aad, attachment.ciphertext)
    except crypto.Unreadable as exc:  # altered, or moved from another record
        raise IntegrityError() from exc
    ctx.note_read(case.peacebuilder_id, attachment.category)
    return attachment.content_type, data
