"""Her risk assessments and protection plan in plain language, in her language (en, fr, es, ar,
sw; English otherwise): for each of her cases, the current assessment (level, who answered,
review date), one waiting for her answer, and the plan's measures with the threat each
addresses. Codes, dates, counts and organisation names only: the texts themselves are hers to
read in `me { cases { riskAssessments } }` (sealed, opened with her key)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from app.access.context import AccessContext
from app.orgs import repository as orgs_repo
from app.peacebuilders.self_service import my_id
from app.tables.cases import Case
from app.tables.incidents import Measure
from app.tables.peacebuilders import Peacebuilder
from app.tables.risk import ANSWERED, AssessmentStatus, RiskAssessment, RiskThreat

T: dict[str, dict[str, str]] = {
    "en": {
        "none": "No risk assessment of your situation is in force yet.",
        "current": "Risk assessment in force since {date}: {level} risk ({threats} threats). "
                   "{who}. It will be reviewed by {review}.",
        "contested": "You contested it: your view is kept beside theirs.",
        "waiting": "{org} shared a risk assessment with you on {date}: it waits for your "
                   "answer (agree, or contest it with your view).",
        "measure": "Plan ({part}): {what} by {org}, {status}{threat}.",
        "threat": ", against threat {n}",
        "herself": "You agreed to it yourself", "network_focal_point":
        "Your network's focal point answered for you", "two_person":
        "Two people of {org} recorded it after consulting you",
        "low": "low", "medium": "medium", "high": "high", "critical": "critical",
        "day_to_day": "day to day", "preventive_protocol": "preventive protocol",
        "emergency_protocol": "emergency protocol",
        "planned": "planned", "in_progress": "in progress", "done": "done",
        "cancelled": "not done",
    },
    "fr": {
        "none": "Aucune évaluation des risques de votre situation n'est encore en vigueur.",
        "current": "Évaluation des risques en vigueur depuis le {date} : risque {level} "
                   "({threats} menaces). {who}. Elle sera revue avant le {review}.",
        "contested": "Vous l'avez contestée : votre avis est conservé à côté du leur.",
        "waiting": "{org} vous a transmis une évaluation des risques le {date} : elle attend "
                   "votre réponse (accepter, ou la contester avec votre avis).",
        "measure": "Plan ({part}) : {what} par {org}, {status}{threat}.",
        "threat": ", contre la menace {n}",
        "herself": "Vous l'avez acceptée vous-même", "network_focal_point":
        "Le point focal de votre réseau a répondu pour vous", "two_person":
        "Deux personnes de {org} l'ont enregistrée après vous avoir consultée",
        "low": "faible", "medium": "moyen", "high": "élevé", "critical": "critique",
        "day_to_day": "au quotidien", "preventive_protocol": "protocole préventif",
        "emergency_protocol": "protocole d'urgence",
        "planned": "prévu", "in_progress": "en cours", "done": "fait", "cancelled": "non fait",
    },
    "es": {
        "none": "Todavía no hay ninguna evaluación de riesgos de su situación vigente.",
        "current": "Evaluación de riesgos vigente desde el {date}: riesgo {level} ({threats} "
                   "amenazas). {who}. Se revisará antes del {review}.",
        "contested": "Usted la impugnó: su opinión se guarda junto a la de ellos.",
        "waiting": "{org} compartió con usted una evaluación de riesgos el {date}: espera su "
                   "respuesta (aceptarla, o impugnarla con su opinión).",
        "measure": "Plan ({part}): {what} por {org}, {status}{threat}.",
        "threat": ", contra la amenaza {n}",
        "herself": "Usted la aceptó", "network_focal_point":
        "El punto focal de su red respondió por usted", "two_person":
        "Dos personas de {org} la registraron tras consultarla",
        "low": "bajo", "medium": "medio", "high": "alto", "critical": "crítico",
        "day_to_day": "día a día", "preventive_protocol": "protocolo preventivo",
        "emergency_protocol": "protocolo de emergencia",
        "planned": "previsto", "in_progress": "en curso", "done": "hecho",
        "cancelled": "no hecho",
    },
    "ar": {
        "none": "لا يوجد حتى الآن تقييم سارٍ للمخاطر المتعلقة بوضعك.",
        "current": "تقييم المخاطر ساري المفعول منذ {date}: مستوى الخطر {level} ({threats} "
                   "تهديدات). {who}. ستتم مراجعته قبل {review}.",
        "contested": "لقد اعترضتِ عليه: رأيك محفوظ إلى جانب رأيهم.",
        "waiting": "شاركت {org} معك تقييمًا للمخاطر في {date}: وهو ينتظر ردّك (الموافقة، أو "
                   "الاعتراض عليه مع إبداء رأيك).",
        "measure": "الخطة ({part}): {what} من قبل {org}، {status}{threat}.",
        "threat": "، في مواجهة التهديد {n}",
        "herself": "لقد وافقتِ عليه بنفسك", "network_focal_point":
        "أجابت جهة التنسيق في شبكتك نيابةً عنك", "two_person":
        "سجّله شخصان من {org} بعد استشارتك",
        "low": "منخفض", "medium": "متوسط", "high": "مرتفع", "critical": "حرج",
        "day_to_day": "يومي", "preventive_protocol": "بروتوكول وقائي",
        "emergency_protocol": "بروتوكول الطوارئ",
        "planned": "مخطط له", "in_progress": "قيد التنفيذ", "done": "منجز",
        "cancelled": "لم يُنجز",
    },
    "sw": {
        "none": "Bado hakuna tathmini ya hatari ya hali yako inayotumika.",
        "current": "Tathmini ya hatari inatumika tangu {date}: hatari {level} (vitisho "
                   "{threats}). {who}. Itapitiwa upya kabla ya {review}.",
        "contested": "Uliipinga: maoni yako yanahifadhiwa kando ya yao.",
        "waiting": "{org} ilishiriki nawe tathmini ya hatari tarehe {date}: inasubiri jibu "
                   "lako (kukubali, au kuipinga kwa maoni yako).",
        "measure": "Mpango ({part}): {what} na {org}, {status}{threat}.",
        "threat": ", dhidi ya tishio {n}",
        "herself": "Uliikubali mwenyewe", "network_focal_point":
        "Mratibu wa mtandao wako alijibu kwa niaba yako", "two_person":
        "Watu wawili wa {org} waliirekodi baada ya kukushauri",
        "low": "ya chini", "medium": "ya wastani", "high": "ya juu", "critical": "kubwa mno",
        "day_to_day": "kila siku", "preventive_protocol": "itifaki ya kuzuia",
        "emergency_protocol": "itifaki ya dharura",
        "planned": "imepangwa", "in_progress": "inaendelea", "done": "imefanyika",
        "cancelled": "haikufanyika",
    },
}


@dataclass(frozen=True, slots=True)
class PlainRisk:
    case_id: uuid.UUID
    language: str
    lines: list[str]


def _date(at: datetime | None) -> str:
    return f"{at:%Y-%m-%d}" if at else "-"


async def overview(ctx: AccessContext, language: str | None) -> list[PlainRisk]:
    """Her own cases' assessments and plans, in sentences (logged as her read of her record)."""
    from app.peacebuilders.plain import WORDS

    pb_id = my_id(ctx)
    pb = await ctx.session.get(Peacebuilder, pb_id)
    lang = (language or (pb.preferred_language if pb else None) or "en").split("-")[0].lower()
    lang = lang if lang in T else "en"
    t = {**T["en"], **T[lang]}
    words = {**WORDS["en"], **WORDS.get(lang, {})}
    cases = list(await ctx.session.scalars(select(Case).where(
        Case.peacebuilder_id == pb_id).order_by(Case.opened_at, Case.id)))
    ids = [c.id for c in cases]
    assessments = list(await ctx.session.scalars(select(RiskAssessment).where(
        RiskAssessment.case_id.in_(ids)).order_by(RiskAssessment.created_at))) if ids else []
    threats = list(await ctx.session.scalars(select(RiskThreat).where(
        RiskThreat.case_id.in_(ids)).order_by(RiskThreat.position))) if ids else []
    measures = list(await ctx.session.scalars(select(Measure).where(
        Measure.case_id.in_(ids), Measure.plan_kind.is_not(None))
        .order_by(Measure.created_at, Measure.id))) if ids else []
    org_ids = {c.lead_org_id for c in cases} | {m.owner_org_id for m in measures}
    names = await orgs_repo.orgs_by_ids(ctx.session, list(org_ids)) if org_ids else {}

    def org(org_id: uuid.UUID) -> str:
        found = names.get(org_id)
        return found.name if found is not None else "-"

    number = {th.id: th.position + 1 for th in threats}
    out = []
    for case in cases:
        lines: list[str] = []
        mine = [a for a in assessments if a.case_id == case.id]
        current = [a for a in mine if a.status in ANSWERED]
        if current:
            a = current[-1]
            who = t.get(a.answered_by or "", "").format(org=org(case.lead_org_id))
            lines.append(t["current"].format(
                date=_date(a.answered_at), level=t[a.level],
                threats=sum(1 for th in threats if th.assessment_id == a.id), who=who,
                review=_date(a.review_at)))
            if a.status == AssessmentStatus.CONTESTED.value:
                lines.append(t["contested"])
        else:
            lines.append(t["none"])
        for a in mine:
            if a.status == AssessmentStatus.SHARED_WITH_HER.value:
                lines.append(t["waiting"].format(org=org(case.lead_org_id),
                                                 date=_date(a.shared_at)))
        for m in measures:
            if m.case_id != case.id or m.plan_kind is None:
                continue
            threat = (t["threat"].format(n=number[m.threat_id])
                      if m.threat_id in number else "")
            lines.append(t["measure"].format(part=t[m.plan_kind], what=words.get(m.kind, m.kind),
                                             org=org(m.owner_org_id),
                                             status=t.get(m.status, m.status), threat=threat))
        out.append(PlainRisk(case.id, lang, lines))
    ctx.record("me.risk_overview", target_type="Peacebuilder", target_id=pb_id,
               details={"cases": [str(i) for i in ids], "language": lang})
    return out
