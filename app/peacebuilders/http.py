"""Her endpoints outside GraphQL: her sign-in (`/auth/login` with `login`, registered with
app/auth/http.py) and redeeming her one-time code (`/auth/redeem-code`). Her copy
(GET /me/data-copy) is app/read/copy.py.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from app.access.log import write_deferred
from app.access.principal import SYSTEM
from app.access.unit import context_for
from app.auth import attempts, principals, sessions
from app.auth.http import HER_LOGIN_FAILED, NO_STORE, on_her_login
from app.auth.passwords import verify_password
from app.errors import BadInput
from app.inputs import check_json
from app.logs import request_id_var
from app.peacebuilders import account as her_account
from app.ratelimit import limiter
from app.tables.consent import PeacebuilderAccount
from app.tenancy import as_system

if TYPE_CHECKING:
    from app.runtime import Runtime

@on_her_login
async def her_login(runtime: Runtime, login: str, password: str, code: str | None,
                    charged: attempts.Charged) -> Response:
    """Her sign-in: her password (or her duress password), and her TOTP code once enrolled.
    Every refusal is the same answer, a suspended login's included (whoever holds her phone
    learns nothing). A duress sign-in answers exactly like a normal one: its session stands for
    an empty decoy, and whom she chose is alerted silently (docs/decisions/0027)."""
    async with runtime.db.transaction() as session:
        now = runtime.clock.now()
        account = await session.scalar(select(PeacebuilderAccount).where(
            PeacebuilderAccount.login == login))
        # Both hashes are always checked, so timing does not tell which one matched.
        ok = verify_password(account.password_hash if account else None, password)
        duress = verify_password(account.duress_hash if account else None, password) and not ok
        usable = account is not None and account.active and (ok or duress)
        held_back = usable and principals.suspended(account, now)
        acr = (await her_account.login_acr(session, account, code, runtime.db.keys)
               if usable and not held_back and account is not None else None)
        ctx = context_for(runtime, session, SYSTEM, request_id=request_id_var.get())
        target = account.peacebuilder_id if account else None
        payload: dict[str, Any] = {}
        if acr is not None and account is not None and duress:
            alerted = await her_account.duress_alert(session, account, now)
            ctx.record("auth.login.duress", target_type="Peacebuilder", target_id=target,
                       details={"acr": acr, "alerted": len(alerted),
                                "alert": account.duress_alert or "both"})
        else:
            ctx.record("auth.login", target_type="Peacebuilder", target_id=target,
                       decision="allow" if acr else "deny",
                       reason=None if acr else ("login suspended" if held_back
                                                else "invalid credentials"),
                       details={"acr": acr} if acr else None)
        if acr is not None and account is not None:
            sess, refresh = await sessions.open_session(
                session, runtime.settings, subject=f"peacebuilder:{account.peacebuilder_id}",
                org_id=None, acr=acr, now=now, duress=duress)
            payload = sessions.token_response(runtime.issuer, sess, refresh, now)
    if acr is None:
        return JSONResponse(HER_LOGIN_FAILED, status_code=401, headers=NO_STORE)
    await attempts.succeeded(runtime, charged)
    return JSONResponse(payload, headers=NO_STORE)


REDEEM_FAILED = {"error": "invalid_grant", "error_description":
                 "This code is not valid: it may be mistyped, used, expired, locked or replaced. "
                 "Ask whoever issued it for a new one."}


@as_system  # nobody is signed in: the code finds her
async def redeem_code_endpoint(request: Request) -> Response:
    """She redeems a one-time enrolment or reset code (JSON {code, password, login}: `login`
    only for a first enrolment) and sets her own password. Every refused code is the same
    answer; each wrong try is counted on the code (the last locks it). All her sessions end."""
    runtime: Runtime = request.app.state.runtime
    try:
        body = json.loads(await request.body())
        check_json(body, "body")
        if not isinstance(body, dict):
            raise TypeError
        code, password = str(body["code"]), str(body["password"])
        login = str(body["login"]) if body.get("login") is not None else None
    except (ValueError, KeyError, TypeError, RecursionError, BadInput):
        return JSONResponse({"error": "invalid_request", "error_description":
                             "Send JSON with code and password (and login, to enrol)."},
                            status_code=400, headers=NO_STORE)
    address = request.client.host if request.client else "-"
    verdict = await limiter(runtime).login("redeem-code", address)
    if not verdict.allowed:
        return JSONResponse({"error": "slow_down", "error_description":
                             "Too many attempts; try again later."}, status_code=429,
                            headers={**NO_STORE, "Retry-After": str(verdict.retry_after)})
    refused: BadInput | None = None
    done: her_account.Redeemed | None = None
    ctx = None
    try:
        async with runtime.db.transaction() as session:
            ctx = context_for(runtime, session, SYSTEM, request_id=request_id_var.get())
            try:
                done = await her_account.redeem(ctx, code, password, login)
            except her_account.CodeRefused as exc:
                refused = exc  # committed: the counted try (and a lock) must stay
    except BadInput as exc:  # rolled back: nothing changed
        refused = exc
    finally:
        if ctx is not None:
            await write_deferred(runtime.db, ctx.deferred)
    if done is None:
        if (isinstance(refused, her_account.CodeRefused)
                and not isinstance(refused, her_account.LoginTaken)) or refused is None:
            return JSONResponse(REDEEM_FAILED, status_code=400, headers=NO_STORE)
        return JSONResponse({"error": "invalid_request", "error_description": refused.message,
                             "field": refused.field}, status_code=400, headers=NO_STORE)
    return JSONResponse({"redeemed": True, "login": done.login, "purpose": done.purpose},
                        headers=NO_STORE)
