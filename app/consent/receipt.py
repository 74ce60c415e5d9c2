"""A human-readable consent receipt for her, in her language (falls back to English)."""

from __future__ import annotations

from datetime import datetime

from app.tables.consent import ConsentGrant

TEXT: dict[str, dict[str, str]] = {
    "en": {"title": "Consent receipt", "grant": "Grant", "to": "Who may see it",
           "what": "What they may see", "why": "For what purpose", "from": "From",
           "until": "Until", "open": "until you revoke it", "how": "How your consent was given",
           "status": "Status", "live": "in force", "revoked": "revoked or ended",
           "pending": "waiting for your confirmation: not in force",
           "revoke": "You can revoke this consent at any time, alone or all at once."},
    "fr": {"title": "Reçu de consentement", "grant": "Autorisation", "to": "Qui peut voir",
           "what": "Ce qui peut être vu", "why": "Dans quel but", "from": "À partir du",
           "until": "Jusqu'au", "open": "jusqu'à ce que vous la retiriez",
           "how": "Comment votre consentement a été donné", "status": "Statut",
           "live": "en vigueur", "revoked": "retirée ou terminée",
           "pending": "en attente de votre confirmation : pas en vigueur",
           "revoke": "Vous pouvez retirer ce consentement à tout moment, seul ou tous à la fois."},
    "es": {"title": "Recibo de consentimiento", "grant": "Autorización", "to": "Quién puede verlo",
           "what": "Qué puede ver", "why": "Con qué propósito", "from": "Desde",
           "until": "Hasta", "open": "hasta que usted lo revoque",
           "how": "Cómo dio su consentimiento", "status": "Estado", "live": "vigente",
           "revoked": "revocado o terminado", "pending": "a la espera de su confirmación: no vigente",
           "revoke": "Puede revocar este consentimiento en cualquier momento, solo o todos a la vez."},
    "ar": {"title": "إيصال الموافقة", "grant": "الإذن", "to": "من يمكنه الاطلاع",
           "what": "ما يمكن الاطلاع عليه", "why": "لأي غرض", "from": "من", "until": "حتى",
           "open": "حتى تسحبيها", "how": "كيف أُعطيت موافقتك", "status": "الحالة",
           "live": "سارية", "revoked": "مسحوبة أو منتهية", "pending": "بانتظار تأكيدك: غير سارية",
           "revoke": "يمكنك سحب هذه الموافقة في أي وقت، منفردة أو جميعها دفعة واحدة."},
    "sw": {"title": "Risiti ya ridhaa", "grant": "Ruhusa", "to": "Nani anaweza kuona",
           "what": "Wanachoweza kuona", "why": "Kwa madhumuni gani", "from": "Kuanzia",
           "until": "Hadi", "open": "hadi utakapoiondoa", "how": "Jinsi ridhaa yako ilivyotolewa",
           "status": "Hali", "live": "inatumika", "revoked": "imeondolewa au imeisha",
           "pending": "inasubiri uthibitisho wako: haitumiki",
           "revoke": "Unaweza kuondoa ridhaa hii wakati wowote, moja moja au zote kwa pamoja."},
}

LABELS: dict[str, dict[str, str]] = {
    "en": {"identity": "identity", "contact": "contact details", "location_coarse":
           "country and region", "location_precise": "exact location", "family": "family",
           "health": "health and psychosocial", "incident_details": "incident details",
           "legal": "legal matters", "financial": "financial", "travel": "travel and relocation",
           "risk_assessment": "risk assessments and safety plans",
           "protection": "protection", "emergency_response": "emergency response",
           "legal_support": "legal support", "advocacy": "advocacy", "public_recognition":
           "public recognition", "media": "media", "aggregate_reporting": "aggregate reporting",
           "in_person": "in person", "written": "in writing", "network_focal_point":
           "through your network's focal point", "verbal_witnessed": "verbally, with a witness",
           "self_service": "by you, signed in"},
    "fr": {"identity": "identité", "contact": "coordonnées", "location_coarse": "pays et région",
           "location_precise": "localisation exacte", "family": "famille",
           "health": "santé et soutien psychosocial", "incident_details": "détails des incidents",
           "legal": "questions juridiques", "financial": "finances",
           "travel": "voyages et relocalisation", "protection": "protection",
           "risk_assessment": "évaluations des risques et plans de sécurité",
           "emergency_response": "réponse d'urgence", "legal_support": "soutien juridique",
           "advocacy": "plaidoyer", "public_recognition": "reconnaissance publique",
           "media": "médias", "aggregate_reporting": "rapports agrégés",
           "in_person": "en personne", "written": "par écrit",
           "network_focal_point": "par le point focal de votre réseau",
           "verbal_witnessed": "oralement, devant témoin", "self_service": "par vous-même"},
}


def render(grant: ConsentGrant, *, recipient_name: str, language: str, now: datetime) -> str:
    lang = language.split("-")[0].lower()
    t = TEXT.get(lang, TEXT["en"])
    labels = {**LABELS["en"], **LABELS.get(lang, {})}
    pending = grant.revoked_at is None and grant.confirmed_at is None
    live = not pending and grant.revoked_at is None and grant.valid_from <= now and (
        grant.valid_until is None or grant.valid_until > now)
    lines = [
        t["title"],
        f"{t['grant']}: {grant.id}",
        f"{t['to']}: {recipient_name}",
        f"{t['what']}: " + ", ".join(labels.get(c, c) for c in sorted(grant.categories)),
        f"{t['why']}: " + ", ".join(labels.get(p, p) for p in sorted(grant.purposes)),
        f"{t['from']}: {grant.valid_from:%Y-%m-%d %H:%M} UTC",
        f"{t['until']}: " + (f"{grant.valid_until:%Y-%m-%d %H:%M} UTC" if grant.valid_until
                             else t["open"]),
        f"{t['how']}: {labels.get(grant.obtained_via or '', grant.obtained_via or '-')}",
        f"{t['status']}: {t['pending'] if pending else t['live'] if live else t['revoked']}",
        t["revoke"],
    ]
    return "\n".join(lines) + "\n"
