"""Her notices in her language (the consent receipt's languages: en, fr, es, ar, sw; English
where a phrase is missing). A title and a plain text of kind, date, case reference and reason —
what she may safely see on her screen; the details stay inside the app."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.consent.receipt import TEXT as RECEIPT_LANGUAGES

LANGUAGES = tuple(RECEIPT_LANGUAGES)

TITLES: dict[str, dict[str, str]] = {
    "en": {
        "incident_acknowledged": "Your report was acknowledged",
        "incident_escalated": "Your report was escalated",
        "incident_status_changed": "Your report changed status",
        "measure_done": "A measure for you was done",
        "measure_not_done": "A measure for you was not done",
        "referral_accepted": "A referral for you was accepted",
        "referral_declined": "A referral for you was declined",
        "case_closed": "Your case was closed",
        "case_reopened": "Your case was reopened",
        "consent_granted_by_others": "Consent was recorded for you",
        "consent_confirmed_by_others": "Consent was confirmed for you",
        "consent_extended_by_others": "Consent was extended for you",
        "consent_awaits_confirmation": "Consent waits for your confirmation",
        "grant_expiring": "A consent of yours ends soon",
        "working_group_new_member": "A working group you trust has a new member",
        "approval_used": "Your approval was used",
        "break_glass_opened": "Emergency access to your data was opened",
        "break_glass_confirmed": "Emergency access to your data was confirmed",
        "break_glass_ended": "Emergency access to your data ended",
        "network_confirmed": "Your network was confirmed",
        "erasure_scheduled": "Erasure of your data was scheduled",
        "enrolment_code_issued": "A sign-in code was issued for you",
        "password_reset": "Your password was reset",
        "login_suspended": "Your sign-in was suspended",
        "correction_answered": "Your correction request was answered",
        "risk_assessment_shared": "A risk assessment waits for your view",
        "risk_assessment_current": "A risk assessment of your situation is now in force",
        "case_data_erased": "The details of a closed case were erased",
        "check_in_missed": "A check-in was missed: your contacts were alerted",
    },
    "fr": {
        "incident_acknowledged": "Votre signalement a été pris en compte",
        "incident_escalated": "Votre signalement a été transmis plus haut",
        "incident_status_changed": "Votre signalement a changé de statut",
        "measure_done": "Une mesure pour vous a été réalisée",
        "measure_not_done": "Une mesure pour vous n'a pas été réalisée",
        "referral_accepted": "Une orientation pour vous a été acceptée",
        "referral_declined": "Une orientation pour vous a été refusée",
        "case_closed": "Votre dossier a été clôturé",
        "case_reopened": "Votre dossier a été rouvert",
        "consent_granted_by_others": "Un consentement a été enregistré pour vous",
        "consent_confirmed_by_others": "Un consentement a été confirmé pour vous",
        "consent_extended_by_others": "Un consentement a été étendu pour vous",
        "consent_awaits_confirmation": "Un consentement attend votre confirmation",
        "grant_expiring": "Un de vos consentements prend bientôt fin",
        "working_group_new_member": "Un groupe de travail a un nouveau membre",
        "approval_used": "Votre approbation a été utilisée",
        "check_in_missed": "Un point de contrôle a été manqué : vos contacts ont été alertés",
        "break_glass_opened": "Un accès d'urgence à vos données a été ouvert",
        "break_glass_confirmed": "Un accès d'urgence à vos données a été confirmé",
        "break_glass_ended": "L'accès d'urgence à vos données a pris fin",
        "network_confirmed": "Votre réseau a été confirmé",
        "erasure_scheduled": "L'effacement de vos données a été programmé",
        "enrolment_code_issued": "Un code de connexion a été émis pour vous",
        "password_reset": "Votre mot de passe a été réinitialisé",
        "login_suspended": "Votre connexion a été suspendue",
        "correction_answered": "Votre demande de correction a reçu une réponse",
        "risk_assessment_shared": "Une évaluation des risques attend votre avis",
        "risk_assessment_current": "Une évaluation des risques de votre situation est en vigueur",
        "case_data_erased": "Les détails d'un dossier clos ont été effacés",
    },
    "es": {
        "incident_acknowledged": "Su denuncia fue recibida",
        "incident_escalated": "Su denuncia fue escalada",
        "incident_status_changed": "Su denuncia cambió de estado",
        "measure_done": "Se realizó una medida para usted",
        "measure_not_done": "No se realizó una medida para usted",
        "referral_accepted": "Se aceptó una derivación para usted",
        "referral_declined": "Se rechazó una derivación para usted",
        "case_closed": "Su caso fue cerrado",
        "case_reopened": "Su caso fue reabierto",
        "consent_granted_by_others": "Se registró un consentimiento para usted",
        "consent_confirmed_by_others": "Se confirmó un consentimiento para usted",
        "consent_extended_by_others": "Se amplió un consentimiento para usted",
        "consent_awaits_confirmation": "Un consentimiento espera su confirmación",
        "grant_expiring": "Uno de sus consentimientos termina pronto",
        "working_group_new_member": "Un grupo de trabajo tiene un nuevo miembro",
        "approval_used": "Se utilizó su aprobación",
        "break_glass_opened": "Se abrió un acceso de emergencia a sus datos",
        "break_glass_confirmed": "Se confirmó un acceso de emergencia a sus datos",
        "break_glass_ended": "Terminó el acceso de emergencia a sus datos",
        "network_confirmed": "Su red fue confirmada",
        "erasure_scheduled": "Se programó el borrado de sus datos",
        "enrolment_code_issued": "Se emitió un código de acceso para usted",
        "password_reset": "Se restableció su contraseña",
        "login_suspended": "Se suspendió su acceso",
        "correction_answered": "Su solicitud de corrección fue respondida",
        "risk_assessment_shared": "Una evaluación de riesgos espera su opinión",
        "risk_assessment_current": "Una evaluación de riesgos de su situación está vigente",
        "check_in_missed": "No se registró un control: se alertó a sus contactos",
        "case_data_erased": "Se borraron los detalles de un caso cerrado",
    },
    "ar": {
        "incident_acknowledged": "تم استلام بلاغك",
        "incident_escalated": "تم تصعيد بلاغك",
        "incident_status_changed": "تغيرت حالة بلاغك",
        "measure_done": "تم تنفيذ إجراء لصالحك",
        "measure_not_done": "لم يتم تنفيذ إجراء لصالحك",
        "referral_accepted": "تم قبول إحالة تخصك",
        "referral_declined": "تم رفض إحالة تخصك",
        "case_closed": "تم إغلاق ملفك",
        "case_reopened": "تمت إعادة فتح ملفك",
        "consent_granted_by_others": "تم تسجيل موافقة باسمك",
        "consent_confirmed_by_others": "تم تأكيد موافقة باسمك",
        "consent_extended_by_others": "تم توسيع موافقة باسمك",
        "consent_awaits_confirmation": "موافقة بانتظار تأكيدك",
        "grant_expiring": "إحدى موافقاتك تنتهي قريبًا",
        "working_group_new_member": "لمجموعة عمل عضو جديد",
        "approval_used": "تم استخدام موافقتك",
        "break_glass_opened": "تم فتح وصول طارئ إلى بياناتك",
        "break_glass_confirmed": "تم تأكيد وصول طارئ إلى بياناتك",
        "break_glass_ended": "انتهى الوصول الطارئ إلى بياناتك",
        "network_confirmed": "تم تأكيد شبكتك",
        "erasure_scheduled": "تمت جدولة محو بياناتك",
        "enrolment_code_issued": "تم إصدار رمز دخول لك",
        "password_reset": "تمت إعادة تعيين كلمة مرورك",
        "login_suspended": "تم تعليق دخولك",
        "correction_answered": "تم الرد على طلب التصحيح",
        "risk_assessment_shared": "تقييم للمخاطر ينتظر رأيك",
        "risk_assessment_current": "تقييم مخاطر وضعك أصبح ساريًا",
        "check_in_missed": "فات موعد اطمئنان: تم تنبيه جهات الاتصال الخاصة بك",
        "case_data_erased": "تم محو تفاصيل قضية مغلقة",
    },
    "sw": {
        "incident_acknowledged": "Ripoti yako imepokelewa",
        "incident_escalated": "Ripoti yako imepandishwa ngazi",
        "incident_status_changed": "Hali ya ripoti yako imebadilika",
        "measure_done": "Hatua kwa ajili yako imetekelezwa",
        "measure_not_done": "Hatua kwa ajili yako haikutekelezwa",
        "referral_accepted": "Rufaa yako imekubaliwa",
        "referral_declined": "Rufaa yako imekataliwa",
        "case_closed": "Kesi yako imefungwa",
        "case_reopened": "Kesi yako imefunguliwa tena",
        "consent_granted_by_others": "Ridhaa imerekodiwa kwa niaba yako",
        "consent_confirmed_by_others": "Ridhaa imethibitishwa kwa niaba yako",
        "consent_extended_by_others": "Ridhaa imepanuliwa kwa niaba yako",
        "consent_awaits_confirmation": "Ridhaa inasubiri uthibitisho wako",
        "grant_expiring": "Ridhaa yako moja inaisha hivi karibuni",
        "working_group_new_member": "Kikundi kazi kina mwanachama mpya",
        "approval_used": "Idhini yako imetumika",
        "break_glass_opened": "Ufikiaji wa dharura wa data yako umefunguliwa",
        "break_glass_confirmed": "Ufikiaji wa dharura wa data yako umethibitishwa",
        "break_glass_ended": "Ufikiaji wa dharura wa data yako umeisha",
        "network_confirmed": "Mtandao wako umethibitishwa",
        "erasure_scheduled": "Ufutaji wa data yako umepangwa",
        "enrolment_code_issued": "Msimbo wa kuingia umetolewa kwako",
        "password_reset": "Nenosiri lako limewekwa upya",
        "login_suspended": "Kuingia kwako kumesimamishwa",
        "correction_answered": "Ombi lako la marekebisho limejibiwa",
        "risk_assessment_shared": "Tathmini ya hatari inasubiri maoni yako",
        "risk_assessment_current": "Tathmini ya hatari ya hali yako sasa inatumika",
        "check_in_missed": "Kuripoti hali yako kulikosekana: watu wako wa mawasiliano walitaarifiwa",
        "case_data_erased": "Maelezo ya kesi iliyofungwa yamefutwa",
    },
}

LABELS: dict[str, dict[str, str]] = {
    "en": {"date": "Date", "case": "Case", "reason": "Reason",
           "more": "Sign in to Safety Net to see the details."},
    "fr": {"date": "Date", "case": "Dossier", "reason": "Motif",
           "more": "Connectez-vous à Safety Net pour voir les détails."},
    "es": {"date": "Fecha", "case": "Caso", "reason": "Motivo",
           "more": "Inicie sesión en Safety Net para ver los detalles."},
    "ar": {"date": "التاريخ", "case": "الملف", "reason": "السبب",
           "more": "سجّلي الدخول إلى Safety Net للاطلاع على التفاصيل."},
    "sw": {"date": "Tarehe", "case": "Kesi", "reason": "Sababu",
           "more": "Ingia kwenye Safety Net kuona maelezo."},
}

# Reason codes in words (English and French; other languages fall back to English).
REASON_TEXT: dict[str, dict[str, str]] = {
    "en": {"risk_resolved": "the risk was resolved", "she_asked": "you asked",
           "relocated_safely": "you were relocated safely", "transferred": "transferred",
           "lost_contact": "contact was lost", "other": "other", "new_threat": "a new threat",
           "follow_up_found_risk": "a follow-up found a risk",
           "closed_in_error": "closed in error", "no_longer_needed": "no longer needed",
           "she_declined": "you declined", "not_feasible": "not feasible",
           "consent_withdrawn": "consent withdrawn", "replaced": "replaced by another",
           "closed": "closed", "expired": "its time ran out", "corrected": "corrected",
           "declined": "declined"},
    "fr": {"risk_resolved": "le risque a été écarté", "she_asked": "à votre demande",
           "relocated_safely": "vous avez été relocalisée en sécurité",
           "transferred": "transféré", "lost_contact": "contact perdu", "other": "autre",
           "new_threat": "une nouvelle menace", "follow_up_found_risk": "un suivi a révélé un risque",
           "closed_in_error": "clôturé par erreur", "no_longer_needed": "plus nécessaire",
           "she_declined": "vous l'avez refusée", "not_feasible": "pas réalisable",
           "consent_withdrawn": "consentement retiré", "replaced": "remplacée par une autre",
           "closed": "fermé", "expired": "sa durée est écoulée", "corrected": "corrigé",
           "declined": "refusé"},
}


@dataclass(frozen=True)
class NoticeText:
    language: str
    title: str
    text: str


def language_of(preferred: str | None, asked: str | None = None) -> str:
    lang = (asked or preferred or "en").split("-")[0].lower()
    return lang if lang in TITLES else "en"


def short_reference(case_id: str) -> str:
    """A short case reference she can read out on the phone (the end of its ID)."""
    return "C-" + case_id.replace("-", "")[-8:].upper()


def render(kind: str, details: dict[str, Any], at: datetime, language: str) -> NoticeText:
    lang = language_of(language)
    title = TITLES[lang].get(kind) or TITLES["en"].get(kind) or kind.replace("_", " ")
    labels = {**LABELS["en"], **LABELS[lang]}
    lines = [title, f"{labels['date']}: {at:%Y-%m-%d %H:%M} UTC"]
    if isinstance(details.get("case"), str):
        lines.append(f"{labels['case']}: {short_reference(details['case'])}")
    reason = details.get("reason")
    if isinstance(reason, str):
        words = {**REASON_TEXT["en"], **REASON_TEXT.get(lang, {})}
        lines.append(f"{labels['reason']}: {words.get(reason, reason.replace('_', ' '))}")
    lines.append(labels["more"])
    return NoticeText(lang, title, "\n".join(lines))
