"""The service directory: what organisations offer (services, languages, regions, whether they
take requests for help, how fast they answer referrals), filtered. Staff only; it holds no
record of hers, so it needs no declared purpose. Filters travel in the URL: codes and the words
typed in the region box, never anything about a woman."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from schema.web import core, i18n
from schema.web.core import N_, Visit, render
from schema.web.pages import VIEWER

DIRECTORY = """query Directory($service: ServiceKind, $language: String, $region: String,
                       $accepts: Boolean, $after: String) {
  VIEWER
  serviceDirectory(service: $service, language: $language, region: $region,
                   acceptsHelpRequests: $accepts, first: 25, after: $after) {
    pageInfo { hasNextPage endCursor }
    edges { node { organisationId services languages regions acceptsHelpRequests
                   referralResponseHours updatedAt organisation { name kind country } } }
  }
}""".replace("VIEWER", VIEWER)

SERVICES: dict[str, str] = {
    "LEGAL_AID": N_("Legal aid"),
    "PSYCHOSOCIAL_SUPPORT": N_("Psychosocial support"),
    "RELOCATION": N_("Relocation"),
    "SECURITY_PROTECTION": N_("Security protection"),
    "MEDICAL": N_("Medical care"),
    "DIGITAL_SECURITY": N_("Digital security"),
    "EMERGENCY_GRANTS": N_("Emergency grants"),
    "ADVOCACY": N_("Advocacy"),
    "SHELTER": N_("Shelter"),
    "DETENTION_MONITORING": N_("Detention monitoring"),
}
ORG_KINDS: dict[str, str] = {
    "MINISTRY": N_("Ministry"),
    "EMBASSY_MISSION": N_("Embassy or mission"),
    "UN_PROTECTION_CLUSTER": N_("UN protection cluster"),
    "OHCHR_OFFICE": N_("OHCHR country office"),
    "NHRI": N_("National human rights institution"),
    "LAW_ENFORCEMENT_LIAISON": N_("Law-enforcement liaison unit"),
    "PEACEBUILDERS_NETWORK": N_("Women peacebuilders' network"),
    "FUND": N_("Fund"),
}
ACCEPTS = {"": None, "yes": True, "no": False}
MAX_FILTER = 200  # the API's limit for language and region

core.NAV.append(("/directory", N_("Service directory")))


def language_name(code: str, language: str) -> str:
    """A language code as its name in the page's language (CLDR), else the code."""
    from babel import Locale

    try:
        name = Locale.parse(language).languages.get(code.lower())
    except (ValueError, TypeError):
        name = None
    return name or code


def _filters(visit: Visit) -> dict[str, str]:
    params = visit.request.query_params
    service = params.get("service", "")
    accepts = params.get("accepts", "")
    return {
        "service": service if service in SERVICES else "",
        "language": params.get("language", "").strip().lower()[:MAX_FILTER],
        "region": params.get("region", "").strip()[:MAX_FILTER],
        "accepts": accepts if accepts in ACCEPTS else "",
    }


async def directory(visit: Visit) -> Response:
    chosen = _filters(visit)
    after = visit.request.query_params.get("after") or None
    variables: dict[str, Any] = {
        "service": chosen["service"] or None, "language": chosen["language"] or None,
        "region": chosen["region"] or None, "accepts": ACCEPTS[chosen["accepts"]],
        "after": after[:2000] if after else None}
    answer = await visit.query(DIRECTORY, variables)
    data = answer.data or {}
    connection = data.get("serviceDirectory") or {}
    entries = [edge["node"] for edge in connection.get("edges") or []]
    page_info = connection.get("pageInfo") or {}
    more = None
    if page_info.get("hasNextPage") and page_info.get("endCursor"):
        from urllib.parse import urlencode

        more = "/directory?" + urlencode({**{k: v for k, v in chosen.items() if v},
                                          "after": page_info["endCursor"]})
    return render(visit.request, "directory.html", language=visit.language, visit=visit,
                  viewer=data.get("viewer"), answer=answer, entries=entries, chosen=chosen,
                  services=SERVICES, org_kinds=ORG_KINDS, more=more, paged=after is not None,
                  language_name=lambda code: language_name(code, visit.language),
                  directory_languages=i18n.LANGUAGES)
