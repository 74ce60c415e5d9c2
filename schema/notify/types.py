"""GraphQL types for a person's own alert channels (webhooks)."""

from __future__ import annotations

import enum
from datetime import datetime

import strawberry

from app.notify.choices import LevelChoice
from app.tables import notify as notify_models
from app.tables.channels import NotifyChannel
from schema import ids
from schema.common import Node, UserError, closed_set, describe_values

AlertKind = closed_set(notify_models.AlertKind, "What an alert is about (its `data` holds "
                       "codes and opaque global IDs only).", {
    "INCIDENT_REPORTED": "An incident was reported on a case your organisation leads.",
    "ESCALATION": "An incident, task or request was not acknowledged in time: you are the "
                  "next level of the chain (`level`, `to`).",
    "ESCALATION_NOTICE": "A member of a group she granted had an escalation (content-free).",
    "TASK_DUE": "A task you or your organisation own is due.",
    "TASK_OWNER_UNCOVERED": "A task's named owner is no longer covered by her consent.",
    "REFERRAL_RECEIVED": "Your organisation received a referral.",
    "HEARING_DUE": "A hearing or detention check is coming up.",
    "HELP_REQUEST_RECEIVED": "A woman without a case asked your organisation for help.",
    "EVIDENCE_ADDED": "Evidence was filed on an incident of a case you lead.",
    "APPROVAL_WITHDRAWN": "She withdrew an approval of a public act by your organisation.",
    "BREAK_GLASS_OPENED": "Someone opened break-glass access to her record.",
    "CONFIRMATION_REQUESTED": "A two-person action waits for your confirmation.",
    "CONSENT_CONFIRMED": "A consent grant of a woman your network acts for was confirmed.",
    "CORRECTION_REQUESTED": "She asked your organisation to correct her data.",
    "ERASURE_SCHEDULED": "An erasure of her data is scheduled (she may stop it).",
    "NETWORK_CONFIRMED": "She (or two focal points) confirmed your network for her.",
    "NOTICE_FOR_HER": "A notice for her who has no working login: pass it on.",
    "NO_ACTIVE_FOCAL_POINT": "Your organisation has no active focal point.",
    "RETENTION_WARNING": "A closed case will be erased soon (extend or hold it).",
    "RISK_REASSESSMENT_DUE": "A high or critical incident started a reassessment of her risk: "
                             "draft it with her (draftRiskAssessment).",
    "RISK_REVIEW_DUE": "The review of her current risk assessment falls due (`review_at`): "
                       "review it with her (draftRiskAssessment); past its date it escalates.",
    "CHECK_IN_MISSED": "She missed a check-in on a case your organisation leads: do what was "
                       "agreed (`action`; its notes on the case's check-in schedule).",
    "HER_CODE_ISSUED": "A one-time sign-in code was issued for a woman your network acts for.",
    "HER_PASSWORD_SET": "A one-time code set her password: her sessions ended; for a few days "
                        "what her login widens waits for your confirmation.",
    "HER_LOGIN_SUSPENDED": "Her login was suspended (you may still act and revoke for her).",
    "HER_LOGIN_REINSTATED": "The suspension of her login was lifted.",
    "HER_CONSENT_HELD": "Consent her login widened after a reset waits for your confirmation "
                        "(confirmConsent).",
    "HER_DURESS_SIGN_IN": "She signed in with her duress password: she may be coerced. Act "
                          "discreetly; her session shows nothing."})


@strawberry.enum(description="How a channel reaches you.")
class ChannelKind(enum.Enum):
    WEBHOOK = "webhook"
describe_values(ChannelKind, {
    "WEBHOOK": "An HTTPS POST to your receiver, signed with the channel's secret.",
})


@strawberry.type(description="One of your own alert channels: for each new alert worth waking "
                             "you for (escalation, incident reported, referral received, task "
                             "due) at or above `minLevel`, a signed, content-free POST to `url`.")
class Channel(Node):
    kind: ChannelKind = strawberry.field(description="How the channel reaches you.")
    url: str = strawberry.field(description="Where alerts are POSTed (https).")
    min_level: int = strawberry.field(description="The escalation level from which this channel "
                                                  "is used; 0 = every alert of those kinds.")
    active: bool = strawberry.field(description="False once removed: nothing more is sent to it.")
    created_at: datetime = strawberry.field(description="When it was added (UTC).")

    @classmethod
    def from_model(cls, channel: NotifyChannel) -> Channel:
        return cls(id=strawberry.ID(ids.encode("Channel", channel.id)),
                   kind=ChannelKind(channel.kind), url=channel.url, min_level=channel.min_level,
                   active=channel.active, created_at=channel.created_at)


@strawberry.type(description="Result of addMyChannel: the channel and its signing secret, shown "
                             "this once. Configure your receiver with it to verify "
                             "`Safety-Net-Signature`.")
class AddChannelPayload:
    channel: Channel | None
    secret: str | None = strawberry.field(description="The signing secret (shown once).")
    user_errors: list[UserError]


@strawberry.type(description="Result of removeMyChannel.")
class RemoveChannelPayload:
    channel: Channel | None
    user_errors: list[UserError]


@strawberry.type(description="What reaches you at one escalation level (0: alerts that are not "
                             "escalations). Your own; people of an organisation only.")
class AlertChannelLevel:
    level: int = strawberry.field(description="0: incident reported, referral received, task "
                                              "due; 1, 2, …: the level of the chain alerting you.")
    inbox: bool = strawberry.field(description="Always true: the inbox and the subscription "
                                               "receive every alert.")
    email: bool = strawberry.field(description="Whether alerts of this level are e-mailed (as a "
                                               "link) when you have an address.")
    webhook_channel_ids: list[strawberry.ID] = strawberry.field(
        description="Which of your webhook channels (Channel IDs) are used at this level.")
    chosen: bool = strawberry.field(description="False: nothing chosen for this level, so the "
                                                "defaults apply (e-mail, webhooks by minLevel).")

    @classmethod
    def from_choice(cls, c: LevelChoice) -> AlertChannelLevel:
        return cls(level=c.level, inbox=True, email=c.email,
                   webhook_channel_ids=[strawberry.ID(ids.encode("Channel", w))
                                        for w in c.webhooks], chosen=c.chosen)


@strawberry.type(description="Result of setMyAlertChannels: every level as it now reaches you.")
class SetAlertChannelsPayload:
    levels: list[AlertChannelLevel] | None
    user_errors: list[UserError]
