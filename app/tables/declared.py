"""What a deployment declares for monitoring: coarse regions and alleged-source categories.

Regions are codes from a list the deployment declares (ISO 3166-2 subdivisions, say), chosen
when an incident is reported; a region marked without a reporting mechanism is shown as "no
data", never as zero. `SAFETY_NET_REGIONS` replaces the demo list:
`CODE=Name,CODE=Name!` (a trailing `!`: no reporting mechanism there).
"""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Region:
    code: str
    name: str
    mechanism: bool  # whether incidents there can reach a reporting organisation at all


DEMO_REGIONS = "KE-NBI=Nairobi,KE-MSA=Mombasa,KE-KSM=Kisumu,KE-GRS=Garissa,KE-TUR=Turkana!"


def regions() -> list[Region]:
    """The declared coarse regions (read each time: a deployment setting, not a constant)."""
    out = []
    for item in (os.environ.get("SAFETY_NET_REGIONS") or DEMO_REGIONS).split(","):
        code, _, name = item.strip().partition("=")
        if code:
            out.append(Region(code.strip().upper(), name.rstrip("!").strip() or code,
                              not name.endswith("!")))
    return out


def region_codes() -> set[str]:
    return {r.code for r in regions()}


class SourceCategory(enum.StrEnum):
    """Alleged source, as the reporter chose it from this list (never inferred from the text)."""

    STATE_ACTOR = "state_actor"
    NON_STATE_ARMED_GROUP = "non_state_armed_group"
    PRIVATE_ACTOR = "private_actor"
    COMMUNITY_OR_FAMILY = "community_or_family"
    ONLINE_UNKNOWN = "online_unknown"
    UNKNOWN = "unknown"


SOURCE_CATEGORIES = tuple(c.value for c in SourceCategory)
