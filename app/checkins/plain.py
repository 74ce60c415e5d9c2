"""Her check-ins, security assessments and consultations in plain language, in her language
(en, fr, es, ar, sw; English otherwise): from codes, dates and organisation names only — never staff's
free text (she reads her sealed records themselves in `me { cases { … } }`)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from app.access.context import AccessContext
from app.orgs import repository as orgs_repo
from app.peacebuilders.self_service import my_id
from app.tables.cases import Case
from app.tables.checkins import CheckIn, CheckInSchedule, CheckInStatus, SecurityAssessment
from app.tables.consultations import Consultation, ConsultationFollowUp, FollowUpStatus
from app.tables.peacebuilders import Peacebuilder

T: dict[str, dict[str, str]] = {
    "en": {
        "schedule": "You agreed with {org} to check in every {every} by {channel}.",
        "next": "Your next check-in is due by {date}.",
        "missed": "Your check-in due {date} was missed: {org} was alerted and will {action}.",
        "last": "Your last check-in: {date}.",
        "assessment": "{org} assessed the digital security of {whose} on {date}; "
                      "follow-up by {follow_up}.",
        "followed_up": "{org} followed up the digital security assessment of {date}.",
        "consultation": "On {date}, {orgs} met {whom}.",
        "follow_up": "Follow-up agreed with you on {held}: {org}, by {due}.",
        "follow_up_done": "Follow-up agreed with you on {held}: done by {org} on {date}.",
        "hours": "{n} hours", "minutes": "{n} minutes", "days": "{n} days",
    },
    "fr": {
        "schedule": "Vous avez convenu avec {org} de donner des nouvelles toutes les {every} "
                    "par {channel}.",
        "next": "Votre prochain point de contrôle est attendu d'ici le {date}.",
        "missed": "Votre point de contrôle du {date} a été manqué : {org} a été alerté et va "
                  "{action}.",
        "last": "Votre dernier point de contrôle : {date}.",
        "assessment": "{org} a évalué la sécurité numérique de {whose} le {date} ; "
                      "suivi d'ici le {follow_up}.",
        "followed_up": "{org} a fait le suivi de l'évaluation de sécurité numérique du {date}.",
        "consultation": "Le {date}, {orgs} ont rencontré {whom}.",
        "follow_up": "Suivi convenu avec vous le {held} : {org}, d'ici le {due}.",
        "follow_up_done": "Suivi convenu avec vous le {held} : fait par {org} le {date}.",
        "hours": "{n} heures", "minutes": "{n} minutes", "days": "{n} jours",
    },
    "es": {
        "schedule": "Acordó con {org} dar señales de vida cada {every} por {channel}.",
        "next": "Su próximo control vence el {date}.",
        "missed": "Su control previsto el {date} no se realizó: se alertó a {org}, que va a "
                  "{action}.",
        "last": "Su último control: {date}.",
        "assessment": "{org} evaluó la seguridad digital de {whose} el {date}; "
                      "seguimiento antes del {follow_up}.",
        "followed_up": "{org} hizo el seguimiento de la evaluación de seguridad digital del "
                       "{date}.",
        "consultation": "El {date}, {orgs} se reunieron con {whom}.",
        "follow_up": "Seguimiento acordado con usted el {held}: {org}, antes del {due}.",
        "follow_up_done": "Seguimiento acordado con usted el {held}: hecho por {org} el "
                          "{date}.",
        "hours": "{n} horas", "minutes": "{n} minutos", "days": "{n} días",
    },
    "ar": {
        "schedule": "اتفقتِ مع {org} على الاطمئنان كل {every} عبر {channel}.",
        "next": "موعد اطمئنانك القادم قبل {date}.",
        "missed": "فات موعد اطمئنانك المحدد في {date}: تم تنبيه {org} وستقوم بـ{action}.",
        "last": "آخر اطمئنان لك: {date}.",
        "assessment": "قيّمت {org} الأمن الرقمي لـ{whose} في {date}؛ المتابعة قبل {follow_up}.",
        "followed_up": "تابعت {org} تقييم الأمن الرقمي المؤرخ {date}.",
        "consultation": "في {date}، التقت {orgs} بـ{whom}.",
        "follow_up": "متابعة اتُّفق عليها معك في {held}: تتولاها {org} قبل {due}.",
        "follow_up_done": "متابعة اتُّفق عليها معك في {held}: أنجزتها {org} في {date}.",
        "hours": "{n} ساعات", "minutes": "{n} دقائق", "days": "{n} أيام",
    },
    "sw": {
        "schedule": "Ulikubaliana na {org} kuripoti hali yako kila {every} kwa {channel}.",
        "next": "Kuripoti kwako kunakofuata ni kabla ya {date}.",
        "missed": "Kuripoti kwako kwa {date} kulikosekana: {org} ilitaarifiwa na itachukua "
                  "hatua: {action}.",
        "last": "Uliripoti mara ya mwisho: {date}.",
        "assessment": "{org} ilitathmini usalama wa kidijitali wa {whose} tarehe {date}; "
                      "ufuatiliaji kabla ya {follow_up}.",
        "followed_up": "{org} ilifuatilia tathmini ya usalama wa kidijitali ya {date}.",
        "consultation": "Tarehe {date}, {orgs} walikutana na {whom}.",
        "follow_up": "Ufuatiliaji uliokubaliwa nawe tarehe {held}: {org}, kabla ya {due}.",
        "follow_up_done": "Ufuatiliaji uliokubaliwa nawe tarehe {held}: ulifanywa na {org} "
                          "tarehe {date}.",
        "hours": "saa {n}", "minutes": "dakika {n}", "days": "siku {n}",
    },
}
WORDS: dict[str, dict[str, str]] = {
    "en": {"app": "signing in to the app", "phone_call": "phone call", "sms": "text message",
           "secure_messenger": "secure messenger", "in_person": "meeting in person",
           "network": "your network", "call_her": "call you",
           "call_safety_contact": "call your safety contact",
           "contact_network": "contact your network", "visit": "visit you",
           "emergency_protocol": "start the emergency protocol",
           "other": "do what you agreed", "her": "you", "her_organisation": "your organisation",
           "her_network": "your network", "her_and_network": "you and your network"},
    "fr": {"app": "connexion à l'application", "phone_call": "appel téléphonique",
           "sms": "SMS", "secure_messenger": "messagerie sécurisée",
           "in_person": "rencontre en personne", "network": "votre réseau",
           "call_her": "vous appeler", "call_safety_contact": "appeler votre contact de sécurité",
           "contact_network": "contacter votre réseau", "visit": "vous rendre visite",
           "emergency_protocol": "déclencher le protocole d'urgence",
           "other": "faire ce qui a été convenu", "her": "vous",
           "her_organisation": "votre organisation", "her_network": "votre réseau",
           "her_and_network": "vous et votre réseau"},
    "es": {"app": "iniciar sesión en la aplicación", "phone_call": "llamada telefónica",
           "sms": "SMS", "secure_messenger": "mensajería segura",
           "in_person": "reunión en persona", "network": "su red",
           "call_her": "llamarla", "call_safety_contact": "llamar a su contacto de seguridad",
           "contact_network": "contactar con su red", "visit": "visitarla",
           "emergency_protocol": "activar el protocolo de emergencia",
           "other": "hacer lo acordado", "her": "usted",
           "her_organisation": "su organización", "her_network": "su red",
           "her_and_network": "usted y su red"},
    "ar": {"app": "تسجيل الدخول إلى التطبيق", "phone_call": "مكالمة هاتفية",
           "sms": "رسالة نصية", "secure_messenger": "تطبيق مراسلة آمن",
           "in_person": "لقاء شخصي", "network": "شبكتك",
           "call_her": "الاتصال بك", "call_safety_contact": "الاتصال بجهة اتصال الأمان الخاصة بك",
           "contact_network": "التواصل مع شبكتك", "visit": "زيارتك",
           "emergency_protocol": "تفعيل بروتوكول الطوارئ",
           "other": "القيام بما اتُّفق عليه", "her": "أنتِ",
           "her_organisation": "منظمتك", "her_network": "شبكتك",
           "her_and_network": "أنتِ وشبكتك"},
    "sw": {"app": "kuingia kwenye programu", "phone_call": "simu",
           "sms": "ujumbe mfupi", "secure_messenger": "programu salama ya ujumbe",
           "in_person": "kukutana ana kwa ana", "network": "mtandao wako",
           "call_her": "kukupigia simu", "call_safety_contact": "kumpigia mtu wako wa usalama",
           "contact_network": "kuwasiliana na mtandao wako", "visit": "kukutembelea",
           "emergency_protocol": "kuanzisha itifaki ya dharura",
           "other": "kufanya mlichokubaliana", "her": "wewe",
           "her_organisation": "shirika lako", "her_network": "mtandao wako",
           "her_and_network": "wewe na mtandao wako"},
}


@dataclass(frozen=True)
class PlainSafety:
    case_id: uuid.UUID
    language: str
    lines: list[str]


def _date(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC") if at else "-"


def _every(t: dict[str, str], minutes: int) -> str:
    if minutes % (24 * 60) == 0:
        return t["days"].format(n=minutes // (24 * 60))
    if minutes % 60 == 0:
        return t["hours"].format(n=minutes // 60)
    return t["minutes"].format(n=minutes)


async def overview(ctx: AccessContext, language: str | None) -> list[PlainSafety]:
    """Her own cases' check-ins, assessments and consultations (logged as her read)."""
    pb_id = my_id(ctx)
    pb = await ctx.session.get(Peacebuilder, pb_id)
    lang = (language or (pb.preferred_language if pb else None) or "en").split("-")[0].lower()
    lang = lang if lang in T else "en"
    t, words = T[lang], {**WORDS["en"], **WORDS.get(lang, {})}
    cases = list(await ctx.session.scalars(select(Case).where(
        Case.peacebuilder_id == pb_id).order_by(Case.opened_at, Case.id)))
    ids = [c.id for c in cases]
    if not ids:
        return []
    schedules = list(await ctx.session.scalars(select(CheckInSchedule).where(
        CheckInSchedule.case_id.in_(ids)).order_by(CheckInSchedule.created_at)))
    periods = list(await ctx.session.scalars(select(CheckIn).where(
        CheckIn.case_id.in_(ids)).order_by(CheckIn.due_at)))
    assessments = list(await ctx.session.scalars(select(SecurityAssessment).where(
        SecurityAssessment.case_id.in_(ids)).order_by(SecurityAssessment.assessed_at)))
    meetings = list(await ctx.session.scalars(select(Consultation).where(
        Consultation.case_id.in_(ids)).order_by(Consultation.held_at)))
    tasks = list(await ctx.session.scalars(select(ConsultationFollowUp).where(
        ConsultationFollowUp.case_id.in_(ids),
        ConsultationFollowUp.status != FollowUpStatus.WITHDRAWN.value)
        .order_by(ConsultationFollowUp.created_at, ConsultationFollowUp.position)))
    org_ids = ({c.lead_org_id for c in cases} | {s.org_id for s in schedules}
               | {a.org_id for a in assessments}
               | {uuid.UUID(o) for m in meetings for o in m.organisations}
               | {t.owner_org_id for t in tasks})
    names = await orgs_repo.orgs_by_ids(ctx.session, list(org_ids))

    def org(org_id: uuid.UUID) -> str:
        found = names.get(org_id)
        return found.name if found is not None else "-"

    out = []
    for case in cases:
        lines: list[str] = []
        for s in schedules:
            if s.case_id != case.id or s.status != "active":
                continue
            lines.append(t["schedule"].format(org=org(s.org_id),
                                              every=_every(t, s.interval_minutes),
                                              channel=words.get(s.channel, s.channel)))
            mine = [p for p in periods if p.schedule_id == s.id]
            done = [p for p in mine if p.checked_in_at is not None]
            if done:
                lines.append(t["last"].format(date=_date(done[-1].checked_in_at)))
            for p in mine:
                if p.status == CheckInStatus.MISSED:
                    lines.append(t["missed"].format(date=_date(p.due_at),
                                                    org=org(case.lead_org_id),
                                                    action=words.get(s.missed_action, "")))
                elif p.status == CheckInStatus.PENDING:
                    lines.append(t["next"].format(date=_date(p.due_at)))
        for a in assessments:
            if a.case_id != case.id:
                continue
            lines.append(t["assessment"].format(
                org=org(a.org_id), whose=words.get(a.subject, a.subject),
                date=_date(a.assessed_at), follow_up=_date(a.follow_up_at)))
            if a.followed_up_at is not None:
                lines.append(t["followed_up"].format(org=org(a.org_id),
                                                     date=_date(a.assessed_at)))
        for m in meetings:
            if m.case_id == case.id:
                lines.append(t["consultation"].format(
                    date=_date(m.held_at), whom=words.get(m.consulted, m.consulted),
                    orgs=", ".join(org(uuid.UUID(o)) for o in m.organisations)))
                # Its follow-ups: who acts and by when, or that it was done (never the text).
                for task in (x for x in tasks if x.consultation_id == m.id):
                    if task.status == FollowUpStatus.DONE:
                        lines.append(t["follow_up_done"].format(
                            held=_date(m.held_at), org=org(task.owner_org_id),
                            date=_date(task.done_at)))
                    else:
                        lines.append(t["follow_up"].format(
                            held=_date(m.held_at), org=org(task.owner_org_id),
                            due=_date(task.due_at)))
        if lines:
            out.append(PlainSafety(case.id, lang, lines))
    ctx.record("me.safety_overview", target_type="Peacebuilder", target_id=pb_id,
               details={"peacebuilder": str(pb_id), "cases": len(out)})
    return out
