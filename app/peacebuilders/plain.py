"""Her case in plain language (issue 17: "her view shows it in plain language"): for each of her
own cases, where it stands, why it closed and what follows, the measures and who owns them, the
referrals, and when a closed case's data will be erased — in her language (en, fr, es, ar, sw;
English otherwise, as her consent receipt).

Built from codes, dates and organisation names only: never a free-text field (those are staff
words, sealed, and shown to her as such in `me { cases }`), never another woman's record (her
own cases by her own ID), never a person of an organisation (a task's named owner is staff)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from app.access.context import AccessContext
from app.consent import receipt
from app.orgs import repository as orgs_repo
from app.peacebuilders.self_service import my_id
from app.tables.cases import Case
from app.tables.incidents import Measure, Referral
from app.tables.peacebuilders import Peacebuilder

T: dict[str, dict[str, str]] = {
    "en": {
        "open": "Your case is open: {org} leads it.",
        "on_hold": "Your case is on hold: {org} leads it.",
        "closed": "Your case was closed on {date} by {org}.",
        "why": "Why it was closed: {reason}.",
        "follow_up": "Follow-up: {what}, by {date}, done by {org}.",
        "measure": "{what}: {status}, done by {org}{due}.",
        "due": ", due {date}",
        "referral": "Your case was referred to {org} for {purpose}: {status}.",
        "retention": "The details of this closed case will be erased on {date}.",
        "held": "The details of this closed case are kept for now ({reason}).",
        "erased": "The details of this case were erased on {date}.",
    },
    "fr": {
        "open": "Votre dossier est ouvert : {org} le suit.",
        "on_hold": "Votre dossier est en attente : {org} le suit.",
        "closed": "Votre dossier a été clos le {date} par {org}.",
        "why": "Motif de la clôture : {reason}.",
        "follow_up": "Suivi : {what}, d'ici le {date}, par {org}.",
        "measure": "{what} : {status}, par {org}{due}.",
        "due": ", pour le {date}",
        "referral": "Votre dossier a été transmis à {org} pour {purpose} : {status}.",
        "retention": "Les détails de ce dossier clos seront effacés le {date}.",
        "held": "Les détails de ce dossier clos sont conservés pour l'instant ({reason}).",
        "erased": "Les détails de ce dossier ont été effacés le {date}.",
    },
    "es": {
        "open": "Su caso está abierto: lo lleva {org}.",
        "on_hold": "Su caso está en pausa: lo lleva {org}.",
        "closed": "Su caso fue cerrado el {date} por {org}.",
        "why": "Motivo del cierre: {reason}.",
        "follow_up": "Seguimiento: {what}, antes del {date}, a cargo de {org}.",
        "measure": "{what}: {status}, a cargo de {org}{due}.",
        "due": ", para el {date}",
        "referral": "Su caso fue remitido a {org} para {purpose}: {status}.",
        "retention": "Los detalles de este caso cerrado se borrarán el {date}.",
        "held": "Los detalles de este caso cerrado se conservan por ahora ({reason}).",
        "erased": "Los detalles de este caso se borraron el {date}.",
    },
    "ar": {
        "open": "قضيتك مفتوحة: تتولاها {org}.",
        "on_hold": "قضيتك معلّقة: تتولاها {org}.",
        "closed": "أُغلقت قضيتك في {date} من قبل {org}.",
        "why": "سبب الإغلاق: {reason}.",
        "follow_up": "المتابعة: {what}، بحلول {date}، تتولاها {org}.",
        "measure": "{what}: {status}، تتولاها {org}{due}.",
        "due": "، موعدها {date}",
        "referral": "أُحيلت قضيتك إلى {org} من أجل {purpose}: {status}.",
        "retention": "ستُمحى تفاصيل هذه القضية المغلقة في {date}.",
        "held": "تُحفظ تفاصيل هذه القضية المغلقة حاليًا ({reason}).",
        "erased": "مُحيت تفاصيل هذه القضية في {date}.",
    },
    "sw": {
        "open": "Kesi yako iko wazi: {org} inaishughulikia.",
        "on_hold": "Kesi yako imesitishwa kwa muda: {org} inaishughulikia.",
        "closed": "Kesi yako ilifungwa tarehe {date} na {org}.",
        "why": "Sababu ya kufungwa: {reason}.",
        "follow_up": "Ufuatiliaji: {what}, kufikia {date}, na {org}.",
        "measure": "{what}: {status}, na {org}{due}.",
        "due": ", ifikapo {date}",
        "referral": "Kesi yako ilipelekwa kwa {org} kwa ajili ya {purpose}: {status}.",
        "retention": "Maelezo ya kesi hii iliyofungwa yatafutwa tarehe {date}.",
        "held": "Maelezo ya kesi hii iliyofungwa yanahifadhiwa kwa sasa ({reason}).",
        "erased": "Maelezo ya kesi hii yalifutwa tarehe {date}.",
    },
}

# Codes in words; a language without a word falls back to English.
WORDS: dict[str, dict[str, str]] = {
    "en": {
        "accompaniment": "Accompaniment", "hosting_at_premises": "Hosting at premises",
        "secure_communication": "Secure communication", "secure_transport": "Secure transport",
        "legal_support": "Legal support", "diplomatic_dialogue": "Diplomatic dialogue",
        "public_statement": "Public statement", "grant": "A grant", "relocation": "Relocation",
        "psychosocial_support": "Psychosocial support",
        "planned": "planned", "in_progress": "in progress", "done": "done",
        "cancelled": "cancelled", "pending": "waiting for an answer", "accepted": "accepted",
        "declined": "declined", "completed": "completed", "revoked": "withdrawn",
        "risk_resolved": "the risk has passed", "she_asked": "you asked for it",
        "relocated_safely": "you were relocated safely",
        "transferred": "another organisation took it over",
        "lost_contact": "contact with you was lost", "other": "another reason",
        "legal_proceedings": "legal proceedings", "investigation": "an investigation",
        "her_request": "at your request", "oversight_review": "an oversight review",
    },
    "fr": {
        "accompaniment": "Accompagnement", "hosting_at_premises": "Hébergement dans des locaux",
        "secure_communication": "Communication sécurisée", "secure_transport": "Transport sécurisé",
        "legal_support": "Soutien juridique", "diplomatic_dialogue": "Dialogue diplomatique",
        "public_statement": "Déclaration publique", "grant": "Une aide financière",
        "relocation": "Relocalisation", "psychosocial_support": "Soutien psychosocial",
        "planned": "prévu", "in_progress": "en cours", "done": "fait", "cancelled": "annulé",
        "pending": "en attente de réponse", "accepted": "accepté", "declined": "refusé",
        "completed": "terminé", "revoked": "retiré",
        "risk_resolved": "le risque est passé", "she_asked": "vous l'avez demandé",
        "relocated_safely": "vous avez été relocalisée en sécurité",
        "transferred": "une autre organisation l'a repris",
        "lost_contact": "le contact avec vous a été perdu", "other": "une autre raison",
        "legal_proceedings": "une procédure judiciaire",
        "investigation": "une enquête", "her_request": "à votre demande",
        "oversight_review": "un contrôle",
    },
    "es": {
        "accompaniment": "Acompañamiento", "hosting_at_premises": "Acogida en instalaciones",
        "secure_communication": "Comunicación segura", "secure_transport": "Transporte seguro",
        "legal_support": "Apoyo jurídico", "diplomatic_dialogue": "Diálogo diplomático",
        "public_statement": "Declaración pública", "grant": "Una ayuda económica",
        "relocation": "Reubicación", "psychosocial_support": "Apoyo psicosocial",
        "planned": "previsto", "in_progress": "en curso", "done": "hecho",
        "cancelled": "cancelado", "pending": "esperando respuesta", "accepted": "aceptado",
        "declined": "rechazado", "completed": "terminado", "revoked": "retirado",
        "risk_resolved": "el riesgo ha pasado", "she_asked": "usted lo pidió",
        "relocated_safely": "fue reubicada en un lugar seguro",
        "transferred": "otra organización lo asumió",
        "lost_contact": "se perdió el contacto con usted", "other": "otro motivo",
        "legal_proceedings": "un proceso judicial", "investigation": "una investigación",
        "her_request": "a petición suya", "oversight_review": "una revisión de supervisión",
    },
    "ar": {
        "accompaniment": "المرافقة", "hosting_at_premises": "الاستضافة في المقرّ",
        "secure_communication": "اتصالات آمنة", "secure_transport": "نقل آمن",
        "legal_support": "دعم قانوني", "diplomatic_dialogue": "حوار دبلوماسي",
        "public_statement": "بيان علني", "grant": "منحة مالية", "relocation": "النقل إلى مكان آمن",
        "psychosocial_support": "دعم نفسي واجتماعي",
        "planned": "مخطط له", "in_progress": "قيد التنفيذ", "done": "منجز",
        "cancelled": "ملغى", "pending": "في انتظار الرد", "accepted": "مقبول",
        "declined": "مرفوض", "completed": "مكتمل", "revoked": "مسحوب",
        "risk_resolved": "زال الخطر", "she_asked": "بناءً على طلبك",
        "relocated_safely": "تم نقلك إلى مكان آمن",
        "transferred": "تولّتها منظمة أخرى",
        "lost_contact": "انقطع الاتصال بك", "other": "سبب آخر",
        "legal_proceedings": "إجراءات قانونية", "investigation": "تحقيق",
        "her_request": "بناءً على طلبك", "oversight_review": "مراجعة رقابية",
    },
    "sw": {
        "accompaniment": "Kusindikizwa", "hosting_at_premises": "Kuhifadhiwa katika ofisi",
        "secure_communication": "Mawasiliano salama", "secure_transport": "Usafiri salama",
        "legal_support": "Msaada wa kisheria", "diplomatic_dialogue": "Mazungumzo ya kidiplomasia",
        "public_statement": "Taarifa kwa umma", "grant": "Ruzuku", "relocation": "Kuhamishwa",
        "psychosocial_support": "Msaada wa kisaikolojia",
        "planned": "imepangwa", "in_progress": "inaendelea", "done": "imefanyika",
        "cancelled": "imesitishwa", "pending": "inasubiri jibu", "accepted": "imekubaliwa",
        "declined": "imekataliwa", "completed": "imekamilika", "revoked": "imeondolewa",
        "risk_resolved": "hatari imepita", "she_asked": "uliomba hivyo",
        "relocated_safely": "ulihamishwa salama",
        "transferred": "shirika jingine liliichukua",
        "lost_contact": "mawasiliano nawe yalipotea", "other": "sababu nyingine",
        "legal_proceedings": "mashauri ya kisheria", "investigation": "uchunguzi",
        "her_request": "kwa ombi lako", "oversight_review": "ukaguzi wa usimamizi",
    },
}


@dataclass(frozen=True, slots=True)
class PlainCase:
    """One of her cases in sentences: where it stands first, then what was done and follows."""

    case_id: uuid.UUID
    language: str
    lines: list[str]


def _date(at: datetime | None) -> str:
    return f"{at:%Y-%m-%d}" if at else "-"


async def overview(ctx: AccessContext, language: str | None) -> list[PlainCase]:
    """Her own cases, in plain language (logged as her read of her own record)."""
    pb_id = my_id(ctx)
    pb = await ctx.session.get(Peacebuilder, pb_id)
    lang = (language or (pb.preferred_language if pb else None) or "en").split("-")[0].lower()
    lang = lang if lang in T else "en"
    t = T[lang]
    words = {**WORDS["en"], **WORDS.get(lang, {})}

    # Purposes in the words of her consent receipt.
    purposes = {**receipt.LABELS["en"], **receipt.LABELS.get(lang, {})}

    def w(code: str | None) -> str:
        return words.get(code or "", code or "-")

    cases = list(await ctx.session.scalars(select(Case).where(
        Case.peacebuilder_id == pb_id).order_by(Case.opened_at, Case.id)))
    ids = [c.id for c in cases]
    measures = list(await ctx.session.scalars(select(Measure).where(
        Measure.case_id.in_(ids)).order_by(Measure.created_at, Measure.id))) if ids else []
    referrals = list(await ctx.session.scalars(select(Referral).where(
        Referral.case_id.in_(ids)).order_by(Referral.created_at, Referral.id))) if ids else []
    org_ids = ({c.lead_org_id for c in cases} | {m.owner_org_id for m in measures}
               | {r.to_org_id for r in referrals})
    names = await orgs_repo.orgs_by_ids(ctx.session, list(org_ids)) if org_ids else {}

    def org(org_id: uuid.UUID) -> str:
        found = names.get(org_id)
        return found.name if found is not None else "-"

    out = []
    for case in cases:
        lead = org(case.lead_org_id)
        lines = [t[case.status].format(org=lead, date=_date(case.closed_at))
                 if case.status in t else t["open"].format(org=lead)]
        planned = {s.get("measure") for s in case.closure_plan or []}
        if case.status == "closed" and case.closure_reason:
            lines.append(t["why"].format(reason=w(case.closure_reason)))
        for m in measures:
            if m.case_id != case.id:
                continue
            if str(m.id) in planned and m.due_at is not None:
                lines.append(t["follow_up"].format(what=w(m.kind), date=_date(m.due_at),
                                                   org=org(m.owner_org_id)))
                continue
            due = t["due"].format(date=_date(m.due_at)) if m.due_at else ""
            lines.append(t["measure"].format(what=w(m.kind), status=w(m.status),
                                             org=org(m.owner_org_id), due=due))
        for r in referrals:
            if r.case_id == case.id:
                lines.append(t["referral"].format(org=org(r.to_org_id),
                                                  purpose=purposes.get(r.purpose, r.purpose),
                                                  status=w(r.status)))
        if case.retention_erased_at is not None:
            lines.append(t["erased"].format(date=_date(case.retention_erased_at)))
        elif case.status == "closed" and case.retention_hold:
            lines.append(t["held"].format(reason=w(case.retention_hold)))
        elif case.status == "closed" and case.erase_after is not None:
            lines.append(t["retention"].format(date=_date(case.erase_after)))
        out.append(PlainCase(case.id, lang, lines))
    ctx.record("me.case_overview", target_type="Peacebuilder", target_id=pb_id,
               details={"cases": [str(i) for i in ids], "language": lang})
    return out
