"""Mutations of her login's lifecycle: one-time codes, suspension, her second factor, her
duress password, and a quick exit (docs/decisions/0027-her-account-threat-model.md)."""

from __future__ import annotations

from datetime import datetime

import strawberry

from app.peacebuilders import account
from schema import ids, permissions
from schema.common import UserError, closed_set, guarded
from schema.context import Info
from schema.permissions import Who
from schema.security.types import SignOutPayload


@strawberry.input(description="Whom a one-time code is for.")
class IssueHerCodeInput:
    peacebuilder_id: strawberry.ID = strawberry.field(description="Her record.")
    confirmation_id: strawberry.ID | None = strawberry.field(default=None, description=(
        "Her lead organisation only: the HER_CODE request you confirmed (confirmTwoPerson); "
        "you, the second focal point, receive the code. Omit it to ask for one."))
    reset_second_factor: bool = strawberry.field(default=False, description=(
        "A reset that also removes her TOTP factor (she lost her phone)."))


@strawberry.type(description="Result of issueHerCode.")
class IssueHerCodePayload:
    code: str | None = strawberry.field(description=(
        "The one-time code, shown this once and never again: hand it to her out of band (in "
        "person, by phone). The service never emails or logs it."))
    expires_at: datetime | None = strawberry.field(description="It stops working then.")
    purpose: CodePurpose | None = strawberry.field(  # type: ignore[valid-type]
        description="What the code does.")
    confirmation_id: strawberry.ID | None = strawberry.field(description=(
        "Her lead organisation: the request a second focal point now confirms."))
    user_errors: list[UserError]


@strawberry.input(description="Whose login.")
class HerLoginInput:
    peacebuilder_id: strawberry.ID = strawberry.field(description="Her record.")


@strawberry.type(description="Result of suspendHerLogin or reinstateHerLogin.")
class HerLoginPayload:
    done: bool = strawberry.field(description=(
        "True when it took effect now; false when a second focal point must confirm it."))
    confirmation_id: strawberry.ID | None = strawberry.field(description=(
        "Her lead organisation: the request a second focal point now confirms."))
    user_errors: list[UserError]


DuressAlert = closed_set(account.DuressAlert, "Whom her duress password silently alerts.", {
    "NETWORK": "Her networks' focal points.",
    "LEAD": "Her lead organisations' focal points.",
    "BOTH": "Both."})
CodePurpose = closed_set(account.CodePurpose, "What a one-time code for her login does.", {
    "ENROLMENT": "Her first password (she has no login yet; she chooses her login name).",
    "RESET": "A new password; her second factor stays.",
    "RESET_ALL": "A new password, and her second factor removed (a lost phone)."},
    name="HerCodePurpose")


@strawberry.input(description="Her duress password and whom it alerts.")
class SetDuressPasswordInput:
    password: str = strawberry.field(description=(
        "At least 10 characters, different from her password. Signing in with it opens an "
        "empty-looking account and silently alerts whom she chose."))
    alert: DuressAlert = strawberry.field(  # type: ignore[valid-type]
        default=DuressAlert.BOTH, description="Whom it alerts.")


@strawberry.type(description="Result of setDuressPassword.")
class SetDuressPasswordPayload:
    set: bool = strawberry.field(description="True once stored.")
    user_errors: list[UserError]


@strawberry.input(description="End every session of yours.")
class SignOutEverywhereInput:
    client_mutation_id: str | None = strawberry.field(default=None, description=(
        "Anything, echoed nowhere: the input has no required field."))


def _code_payload(issued: account.IssuedHerCode | None,
                  asked: object | None, errors: list[UserError]) -> IssueHerCodePayload:
    return IssueHerCodePayload(
        code=issued.code if issued else None, expires_at=issued.expires_at if issued else None,
        purpose=CodePurpose(issued.purpose) if issued else None,
        confirmation_id=(strawberry.ID(ids.encode("Confirmation", asked.id))  # type: ignore[attr-defined]
                         if asked is not None else None),
        user_errors=errors)


@strawberry.type
class HerAccountMutations:
    @permissions.mutation(
        "Issue her a one-time enrolment (no login yet) or reset code, short-lived and single use; "
        "she redeems it at POST /auth/redeem-code and sets her own password. A focal point of a "
        "network she confirmed receives it at once; her lead organisation asks first and the "
        "second focal point who confirms receives it (two-person rule). Her unused codes are "
        "voided; she and her network are told. Logged (never the code).",
        step_up=True, who=Who.STAFF_PEOPLE,
        when="only focal points of her network or of her lead organisation; anyone else gets NOT_FOUND")
    async def issue_her_code(self, info: Info, input: IssueHerCodeInput) -> IssueHerCodePayload:
        pb_id = ids.decode(input.peacebuilder_id, "Peacebuilder", "peacebuilderId")
        confirmation = (ids.decode(input.confirmation_id, "Confirmation", "confirmationId")
                        if input.confirmation_id else None)
        found, errors = await guarded(info, lambda: info.context.loaders.call(
            account.issue_code, info.context.access, pb_id, confirmation_id=confirmation,
            reset_factor=input.reset_second_factor))
        issued, asked = found if found else (None, None)
        return _code_payload(issued, asked, errors)

    @permissions.mutation(
        "Suspend her login at once (a seized phone): refused at sign-in and on every replica at "
        "the next request. Her network's focal point: until reinstated. Her lead organisation: "
        "after a second focal point confirms, lapsing after 72 hours unless her network suspends "
        "too. Her network can still act and revoke for her. She is told; logged.",
        step_up=True, who=Who.STAFF_PEOPLE,
        when="only focal points of her network or of her lead organisation; anyone else gets NOT_FOUND")
    async def suspend_her_login(self, info: Info, input: HerLoginInput) -> HerLoginPayload:
        pb_id = ids.decode(input.peacebuilder_id, "Peacebuilder", "peacebuilderId")
        found, errors = await guarded(info, lambda: info.context.loaders.call(
            account.suspend, info.context.access, pb_id))
        done, asked = found if found else (False, None)
        return HerLoginPayload(done=done, confirmation_id=(
            strawberry.ID(ids.encode("Confirmation", asked.id)) if asked else None),
            user_errors=errors)

    @permissions.mutation(
        "Lift the suspension of her login: her network's focal point at once, her lead "
        "organisation under the two-person rule. She signs in again. Logged.",
        step_up=True, who=Who.STAFF_PEOPLE,
        when="only focal points of her network or of her lead organisation; anyone else gets NOT_FOUND")
    async def reinstate_her_login(self, info: Info, input: HerLoginInput) -> HerLoginPayload:
        pb_id = ids.decode(input.peacebuilder_id, "Peacebuilder", "peacebuilderId")
        found, errors = await guarded(info, lambda: info.context.loaders.call(
            account.reinstate, info.context.access, pb_id))
        done, asked = found if found else (False, None)
        return HerLoginPayload(done=done, confirmation_id=(
            strawberry.ID(ids.encode("Confirmation", asked.id)) if asked else None),
            user_errors=errors)

    @permissions.mutation(
        "Her duress password (she alone, signed in herself): signing in with it opens an "
        "empty-looking account and silently alerts whom she chose. Logged (never the password).",
        who=Who.HERSELF)
    async def set_duress_password(self, info: Info,
                                  input: SetDuressPasswordInput) -> SetDuressPasswordPayload:
        _, errors = await guarded(info, lambda: info.context.loaders.call(
            account.set_duress, info.context.access, input.password,
            account.DuressAlert(input.alert.value)))
        return SetDuressPasswordPayload(set=not errors, user_errors=errors)

    @permissions.mutation(
        "Quick exit: end every session and refresh token of yours, on every device and every "
        "replica at the next request. Logged.",
        who=Who.PEOPLE)
    async def sign_out_everywhere(
        self, info: Info, input: SignOutEverywhereInput | None = None,
    ) -> SignOutPayload:
        ended, errors = await guarded(info, lambda: info.context.loaders.call(
            account.sign_out_everywhere, info.context.access))
        return SignOutPayload(sessions_ended=ended or 0, user_errors=errors)
