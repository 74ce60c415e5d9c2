"""The one constructor of an AccessContext for a unit of work (a request, a CLI command, a job, a
delivery), with the deployment's step-up rule. Here, below the runtime that holds its parts, so
the identity edge (app/auth) builds contexts without importing the app's wiring."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from app.access.context import AccessContext

if TYPE_CHECKING:
    from app.runtime import Runtime


def context_for(
    runtime: Runtime,
    session: Any,
    principal: Any,
    *,
    request_id: str,
    purpose: str | None = None,
) -> AccessContext:
    """An AccessContext for one unit of work, from the app's runtime."""
    settings = runtime.settings
    return AccessContext(principal=principal, session=session, db=runtime.db,
                         policy=runtime.policy, clock=runtime.clock, request_id=request_id,
                         purpose=purpose, step_up_acr=frozenset(settings.step_up_acr),
                         step_up_seconds=settings.step_up_seconds,
                         external_issuer=settings.oidc_issuer if settings.issuer == "oidc"
                         else None,
                         her_account={"code_hours": settings.her_code_hours,
                                      "code_attempts": settings.her_code_attempts,
                                      "hold_days": settings.her_reset_hold_days},
                         checkpoint_dirs=(settings.checkpoints, settings.checkpoint_keys))
