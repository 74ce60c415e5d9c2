"""Evidence files on an incident: size-limited, content type checked by its bytes, encrypted at
rest (AES-256-GCM; the associated data binds each ciphertext to its incident and attachment, so
ciphertexts cannot be swapped), readable only with the data category they were filed under."""

from __future__ import annotations

import os
import secrets
import uuid
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from app.access.context import AccessContext
from app.consent.categories import DataCategory
from app.errors import AppError, BadInput, NotFound
from app.incidents import service as incidents
from app.incidents.models import Attachment

MAX_BYTES = 5 * 1024 * 1024


class IntegrityError(AppError):
    code = "INTEGRITY_ERROR"
    message = "The file failed its integrity check."
SIGNATURES = {
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "application/pdf": (b"%PDF-",),
}
TEXT = "text/plain"


def _key(key_path: Path) -> bytes:
    """The attachment key, generated on first use beside the other keys (never in git)."""
    if not key_path.exists():
        key_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(AESGCM.generate_key(bit_length=256))
    return key_path.read_bytes()


def _aad(incident_id: uuid.UUID, attachment_id: uuid.UUID) -> bytes:
    return f"safety-net/attachment/{incident_id}/{attachment_id}".encode()


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


async def upload(ctx: AccessContext, key_path: Path, incident_id: uuid.UUID, content_type: str,
                 data: bytes, category: str = DataCategory.INCIDENT_DETAILS.value) -> Attachment:
    await ctx.require("incident", "create")
    incident = await incidents.get(ctx, incident_id)
    if category not in {c.value for c in DataCategory}:
        raise BadInput("Unknown data category.", field="category")
    from app.cases.models import Case

    case = await ctx.session.get(Case, incident.case_id)
    assert case is not None
    if category not in (await ctx.released([case.peacebuilder_id])).get(case.peacebuilder_id, ()):
        raise BadInput("Her consent does not let you file evidence in this category.",
                       field="category")
    kind = check_content(content_type, data)
    attachment_id = uuid.uuid4()
    nonce = secrets.token_bytes(12)
    sealed = nonce + AESGCM(_key(key_path)).encrypt(nonce, data, _aad(incident.id, attachment_id))
    attachment = Attachment(id=attachment_id, incident_id=incident.id, category=category,
                            content_type=kind, size=len(data), ciphertext=sealed,
                            uploaded_by=ctx.principal.subject, uploaded_at=ctx.clock.now())
    ctx.session.add(attachment)
    await ctx.session.flush()
    incidents.event(ctx, incident.case_id, "attachment.added", attachment.id,
                    {"incident": str(incident.id), "category": category})
    ctx.record("attachment.upload", target_type="Incident", target_id=incident.id,
               details={"attachment": str(attachment.id), "category": category, "bytes": len(data),
                        "peacebuilder": str(case.peacebuilder_id)})
    return attachment


async def download(ctx: AccessContext, key_path: Path, attachment_id: uuid.UUID) -> tuple[str, bytes]:
    attachment = await ctx.session.get(Attachment, attachment_id)
    if attachment is None:
        raise NotFound()
    incident = await incidents.get(ctx, attachment.incident_id)
    from app.cases.models import Case

    case = await ctx.session.get(Case, incident.case_id)
    assert case is not None
    if attachment.category not in (await ctx.released([case.peacebuilder_id])).get(
            case.peacebuilder_id, ()):
        ctx.deny("attachment.read", target_type="Incident", target_id=incident.id,
                 reason=ctx.redaction_reason().value,
                 details={"peacebuilder": str(case.peacebuilder_id)})
        raise NotFound()
    nonce, sealed = attachment.ciphertext[:12], attachment.ciphertext[12:]
    try:
        data = AESGCM(_key(key_path)).decrypt(nonce, sealed, _aad(incident.id, attachment.id))
    except InvalidTag as exc:  # altered, or moved from another record
        raise IntegrityError() from exc
    ctx.note_read(case.peacebuilder_id, attachment.category)
    return attachment.content_type, data
