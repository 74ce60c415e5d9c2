"""Who may widen who sees her: the consent-recording rules, as one table.

Only she widens access to her data. Everyone else may record what she said, and it waits for
her (or her network, or a second person) before it releases anything. The table below is the
whole policy; `decide()` reads it, and docs/decisions/0013-consent-integrity.md shows it to
people. Reading is decided elsewhere (app/access/visibility.py); this module decides writes.

Callers: herself (her own login), her network (a focal point of a network she confirmed, acting
for her), staff (a person of an organisation with standing towards her), machine (a client with
standing). Anyone else is not found before the rules are asked.

- grant:        herself live | network live, never to itself | staff: own organisation only,
                pending | machine refused
- intake:       staff as grant, only while registering her or opening the first case of a woman
                its organisation registered | machine refused
- confirm:      herself live | network live, never to itself | staff as the second person: live
                only without protected terms, with evidence, while she has no login | machine
                refused
- extend:       herself live | network live, never to itself | staff refused (record a new grant)
- narrow/revoke: herself, network yes | staff only grants to its own organisation | machine refused
- revoke all:   herself, network yes | staff, machine refused

Pending, recorded by staff: awaits HER (her login or her network) when she has a login or the
terms are protected; otherwise it awaits a SECOND PERSON of the recipient (the two-person rule,
app/confirmations), which needs the evidence (a signed form, a recording reference) attached.
Protected terms — identity, contact, precise location, media, public recognition — come into
force only by her or her network. Every caller but herself needs a recent second factor.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, replace

from app.tables.categories import DataCategory, Purpose


class Caller(enum.StrEnum):
    HERSELF = "herself"
    NETWORK = "network"  # a focal point of a network she confirmed, acting for her
    STAFF = "staff"  # a person of an organisation with standing towards her
    MACHINE = "machine"  # a machine client with standing towards her


class Act(enum.StrEnum):
    GRANT = "grant"
    INTAKE = "intake"
    CONFIRM = "confirm"
    EXTEND = "extend"
    NARROW = "narrow"
    REVOKE = "revoke"
    REVOKE_ALL = "revoke_all"


class Result(enum.StrEnum):
    LIVE = "live"  # in force now (a grant) or allowed (a narrowing, a revocation)
    AWAITS_HER = "her"  # pending until she (or her network) confirms
    AWAITS_SECOND_PERSON = "second_person"  # pending until a second person confirms
    REFUSED = "refused"


class Awaiting(enum.StrEnum):
    HER = "her"
    SECOND_PERSON = "second_person"


PROTECTED_CATEGORIES = frozenset({DataCategory.IDENTITY.value, DataCategory.CONTACT.value,
                                  DataCategory.LOCATION_PRECISE.value})
PROTECTED_PURPOSES = frozenset({Purpose.MEDIA.value, Purpose.PUBLIC_RECOGNITION.value})


def protected(categories: frozenset[str] | set[str] | list[str],
              purposes: frozenset[str] | set[str] | list[str]) -> bool:
    """Terms that only she or her network can bring into force."""
    return bool(set(categories) & PROTECTED_CATEGORIES or set(purposes) & PROTECTED_PURPOSES)


@dataclass(frozen=True)
class Facts:
    """What the rules need to know about one attempt."""

    to_own_organisation: bool = False  # the recipient is the caller's organisation
    to_the_network_itself: bool = False  # the caller acts as her network and names itself
    protected: bool = False
    she_has_login: bool = False
    evidence: bool = False
    counting_only: bool = False  # purpose aggregate_reporting alone: releases counts, no record


@dataclass(frozen=True)
class Decision:
    result: Result
    message: str | None = None
    field: str | None = None

    @property
    def refused(self) -> bool:
        return self.result is Result.REFUSED


MACHINE = Decision(Result.REFUSED, "Machine clients never record consent: a person of your "
                   "organisation records what she said, and she or a second person confirms it.")
OTHERS = Decision(Result.REFUSED, "Only she or her network record consent for another recipient; "
                  "your organisation records only what she gave it.", "recipient")
TO_ITSELF = Decision(Result.REFUSED, "A network never grants to itself: she records that herself, "
                     "or your organisation's staff record it for her to confirm.", "recipient")
EXTEND_BY_STAFF = Decision(Result.REFUSED, "Staff cannot widen a grant: record a new grant, "
                           "which waits for her confirmation.")
REVOKE_ALL_BY_STAFF = Decision(Result.REFUSED, "Only she or her network revoke all her grants.")
NO_EVIDENCE = Decision(Result.REFUSED, "Attach the evidence of her consent (a signed form or a "
                       "recording reference): a second person confirms it against that.",
                       "evidence")
SECOND_PERSON_PROTECTED = Decision(
    Result.REFUSED, "Identity, contact, precise location, media and public recognition come into "
    "force only when she or her network confirms them.")
SECOND_PERSON_SHE_HAS_LOGIN = Decision(
    Result.REFUSED, "She has her own login: she confirms it herself (or her network for her).")
LIVE = Decision(Result.LIVE)


def _staff_records(facts: Facts) -> Decision:
    """Staff recording what she gave their own organisation: it waits for confirmation."""
    if not facts.to_own_organisation:
        return OTHERS
    if facts.she_has_login or facts.protected:
        return Decision(Result.AWAITS_HER)
    if not facts.evidence:
        return NO_EVIDENCE
    return Decision(Result.AWAITS_SECOND_PERSON)


def _staff_intake(facts: Facts) -> Decision:
    """At intake staff also record her plain choice to be counted, anonymously, in another
    organisation's (or a working group's) statistics: counts only, never her record, and
    pending like the intake grant itself."""
    if facts.counting_only and not facts.to_own_organisation:
        return _staff_records(replace(facts, to_own_organisation=True))
    return _staff_records(facts)


def _second_person_confirms(facts: Facts) -> Decision:
    if facts.protected:
        return SECOND_PERSON_PROTECTED
    if facts.she_has_login:
        return SECOND_PERSON_SHE_HAS_LOGIN
    if not facts.evidence:
        return NO_EVIDENCE
    return LIVE


def _network(facts: Facts) -> Decision:
    return TO_ITSELF if facts.to_the_network_itself else LIVE


def _staff_narrows(facts: Facts) -> Decision:
    return LIVE if facts.to_own_organisation else OTHERS


Rule = Callable[[Facts], Decision]
RULES: dict[Act, dict[Caller, Rule]] = {
    Act.GRANT: {Caller.HERSELF: lambda f: LIVE, Caller.NETWORK: _network,
                Caller.STAFF: _staff_records},
    Act.INTAKE: {Caller.STAFF: _staff_intake},
    Act.CONFIRM: {Caller.HERSELF: lambda f: LIVE, Caller.NETWORK: _network,
                  Caller.STAFF: _second_person_confirms},
    Act.EXTEND: {Caller.HERSELF: lambda f: LIVE, Caller.NETWORK: _network,
                 Caller.STAFF: lambda f: EXTEND_BY_STAFF},
    Act.NARROW: {Caller.HERSELF: lambda f: LIVE, Caller.NETWORK: lambda f: LIVE,
                 Caller.STAFF: _staff_narrows},
    Act.REVOKE: {Caller.HERSELF: lambda f: LIVE, Caller.NETWORK: lambda f: LIVE,
                 Caller.STAFF: _staff_narrows},
    Act.REVOKE_ALL: {Caller.HERSELF: lambda f: LIVE, Caller.NETWORK: lambda f: LIVE,
                     Caller.STAFF: lambda f: REVOKE_ALL_BY_STAFF},
}


def decide(act: Act, caller: Caller, facts: Facts) -> Decision:
    """The one answer to "may this caller record this, and does it take effect now?"."""
    if caller is Caller.MACHINE:
        return MACHINE
    rule = RULES[act].get(caller)
    return rule(facts) if rule is not None else OTHERS
