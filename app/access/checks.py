"""Which access checks a unit of work made, for the test that holds the schema's declared
requirements to the code (schema/permissions.py, tests/test_descriptions.py).

Nothing is recorded unless a caller opened `recording()`: in production the ContextVar stays
None and a check costs one lookup. The list is shared with tasks the request spawns (they copy
the context, not the list), so checks made anywhere in the request land in it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

Check = tuple[str, str]  # (object, action) as in policies/policy.csv
# A recent second-factor sign-in (AccessContext.require_recent_mfa): not a Casbin permission.
STEP_UP: Check = ("step_up", "recent_second_factor")

_made: ContextVar[list[Check] | None] = ContextVar("access_checks_made", default=None)


def note(check: Check) -> None:
    """Record a check about to be decided (allowed or not), when someone is recording."""
    made = _made.get()
    if made is not None:
        made.append(check)


@contextmanager
def recording() -> Iterator[list[Check]]:
    """Collect the checks made inside the block, in order (duplicates kept)."""
    made: list[Check] = []
    token = _made.set(made)
    try:
        yield made
    finally:
        _made.reset(token)
