"""Her access history in her language. The API describes each entry in English
(`AccessHistoryEntry.description`, from `schema/audit/types.py` ACTIONS); the page translates
the fixed texts as they are and rebuilds the two that name data categories ("read your
identity, contact") from the categories' own labels. Anything else is shown as the API says it
(tests/test_web_her.py fails when the API gains a text this list lacks); an action the API
words only by its code gets the access log's label of that code."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from schema.web.audit_actions import ACTIONS
from schema.web.core import N_

TEXTS = frozenset({
    N_("added evidence to an incident"),
    N_("asked for your case and was refused"),
    N_("asked for your record and was refused"),
    N_("cancelled a hearing in your case"),
    N_("closed emergency access"),
    N_("exported your data"),
    N_("extended a consent grant"),
    N_("moved a hearing in your case"),
    N_("narrowed a consent grant"),
    N_("opened a case"),
    N_("opened emergency access without your consent"),
    N_("read your record"),
    N_("recorded a consent grant"),
    N_("recorded a visit to you in detention"),
    N_("recorded how a hearing in your case went"),
    N_("recorded that you are detained, to watch over your detention"),
    N_("recorded your approval of a public act"),
    N_("recorded your release"),
    N_("referred your case"),
    N_("registered you"),
    N_("reported an incident on your case"),
    N_("revoked a consent grant"),
    N_("scheduled a hearing in your case"),
    N_("updated your case"),
    N_("updated your record"),
    N_("was refused an export of your data"),
    N_("was refused cancelling a hearing in your case"),
    N_("was refused moving a hearing in your case"),
    N_("was refused recording a grant"),
    N_("was refused recording a visit to you in detention"),
    N_("was refused recording how a hearing in your case went"),
    N_("was refused recording your detention"),
    N_("was refused recording your release"),
    N_("was refused referring your case"),
    N_("was refused scheduling a hearing in your case"),
})
# An action the API has no sentence for is described by its code ("check in schedule: agree"):
# the auditor's label of that code says it.
BY_CODE = {code.replace("_", " ").replace(".", ": "): label for code, label in ACTIONS.items()}
READ = re.compile(r"read your (?P<cats>[a-z_ ,]+)")
ASKED = re.compile(r"asked for your (?P<cats>[a-z_ ,]+) and was refused")
REFUSED = re.compile(r"was refused: (?P<what>.+)")
READ_WHAT = N_("read: %(what)s")
ASKED_WHAT = N_("asked for, and was refused: %(what)s")
REFUSED_WHAT = N_("was refused: %(what)s")


def describe(text: str, gettext: Callable[[str], str], labels: Mapping[str, str],
             language: str) -> str:
    """The API's English description in the page's language (`labels`: data categories by
    code, untranslated); in English, the API's own words."""
    if language == "en":
        return text
    if text in TEXTS:
        return gettext(text)
    if text in BY_CODE:
        return gettext(BY_CODE[text])
    for pattern, message in ((READ, READ_WHAT), (ASKED, ASKED_WHAT)):
        found = pattern.fullmatch(text)
        if found:
            codes = [c.strip().upper().replace(" ", "_") for c in found["cats"].split(",")]
            if all(code in labels for code in codes):
                what = ", ".join(gettext(labels[code]) for code in codes)
                return gettext(message) % {"what": what}
    found = REFUSED.fullmatch(text)
    if found and (found["what"] in TEXTS or found["what"] in BY_CODE):
        what = gettext(BY_CODE.get(found["what"], found["what"]))
        return gettext(REFUSED_WHAT) % {"what": what}
    return text
