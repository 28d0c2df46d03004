"""What the domain records as codes, in the words of the person reading the page.

The pipeline, the channels and the audit log store codes with their values (a post's
``last_error_code``, an attempt's outcome, an audit entry's action and detail) next to an
English message for the logs and the command line.  Pages never show that English: each code
is explained here through the reader's gettext catalog (``_``), and the steps it asks for
name the page's own buttons, never a command.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from marketing.models import AttemptOutcome, AuditLog, Post, PostState
from marketing.problems import Problem

Gettext = Callable[[str], str]

#: Codes of problems no retry can fix until a person changes something elsewhere (a secret,
#: the account's token, the service's settings): the page offers no "Retry" for them.
_BLOCKED_CODES = ("missing_secret", "account_unhealthy", "development-secret")

#: Channel codes are ``<channel>:<reason>``.  Posts that failed before that rule (#16) still
#: carry the codes of then, which named no channel: read as today's.
LEGACY_CODES = {
    "no_token": "youtube:no-token",
    "network": "youtube:network",
    "authError": "youtube:authError",
    "invalid_content": "youtube:invalid-content",
    "empty_video": "youtube:empty-video",
    "upload_interrupted": "youtube:upload-interrupted",
    "upload_outcome_unknown": "youtube:upload-outcome-unknown",
    "no_channel": "youtube:no-channel",
    "wrong_channel": "youtube:wrong-channel",
    "reconcile_incomplete": "youtube:reconcile-incomplete",
    "invalid-content": "email:invalid-content",
    "invalid-address": "email:invalid-address",
    "invalid-sender": "email:invalid-sender",
    "no-recipients": "email:no-recipients",
}


def current_code(code: str) -> str:
    """``code`` in today's vocabulary (``<channel>:<reason>``), whenever it was recorded."""
    if code.startswith("smtp-"):
        return f"email:{code}"
    return LEGACY_CODES.get(code, code)


def reason_of(code: str) -> str:
    """The reason part of a channel code (``youtube:no-token`` -> ``no-token``)."""
    return current_code(code).partition(":")[2] or code


@dataclass(frozen=True)
class Explanation:
    """A post's problem for a person: what happened, what to do, and whether retrying helps."""

    problem: str
    todo: str
    retry: bool


def _family(code: str) -> str:
    """The kind of problem a channel's code (``<channel>:<reason>``) names."""
    code = current_code(code)
    reason = reason_of(code)
    if code in _BLOCKED_CODES:
        return code
    if reason == "development-secret":
        return "development-secret"
    if code.startswith("quota:"):
        return "quota"
    if reason == "monthly-quota":
        return "monthly_quota"
    if reason in {"hourly-limit", "rate-limit"}:
        return "hourly_limit"
    if "media" in code or reason in {"file", "empty-video"}:
        return "media"
    if reason == "invalid-address":
        return "address"
    if reason in {"invalid-content", "invalid-sender"}:
        return "content"
    if reason.startswith("smtp-"):
        return "smtp"
    if reason in {"no-token", "token", "authError", "no-channel", "wrong-channel"}:
        return "account_unhealthy"
    return ""


def explain(post: Post, *, account: str, _: Gettext) -> Explanation:
    """Why ``post`` (sent through the account named ``account``) needs a person, and what to
    do about it, in the reader's language."""
    code = post.last_error_code or ""
    family = _family(code)
    if family == "missing_secret":
        return Explanation(
            _("The password (secret) of account %(account)s is not set on the server.")
            % {"account": account},
            _(
                "Ask the system administrator to set it, then press “Token renewed: mark "
                "healthy” for the account on the community's page: its waiting posts go out "
                "again."
            ),
            retry=False,
        )
    if family == "development-secret":
        return Explanation(
            _("The server still uses its development key, so e-mails are not sent."),
            _("Ask the system administrator to set the server's own secret key, then retry."),
            retry=False,
        )
    if post.state == PostState.NEEDS_RECONNECT or family == "account_unhealthy":
        return Explanation(
            _("The channel no longer accepts account %(account)s.") % {"account": account},
            _(
                "Renew the account's token, then press “Token renewed: mark healthy” for the "
                "account on the community's page: its waiting posts go out again."
            ),
            retry=False,
        )
    if post.state == PostState.UNCONFIRMED:
        return Explanation(
            _("It is not known whether the channel published this post."),
            _(
                "Look for the post on the channel. If it is there, mark it as published with "
                "its address; if not, retry."
            ),
            retry=True,
        )
    if family == "quota":
        return Explanation(
            _("The channel's quota for today is used up."),
            _("Nothing to do: the post goes out when the quota allows."),
            retry=True,
        )
    if family == "monthly_quota":
        return Explanation(
            _("The account's messages for this month are used up."),
            _(
                "Nothing to do: the post goes out when the month's messages are renewed. To send "
                "sooner, raise the account's plan with the channel, then retry."
            ),
            retry=True,
        )
    if family == "hourly_limit":
        return Explanation(
            _("The account has sent as many messages as the channel allows in an hour."),
            _("Nothing to do: the post goes out when the hour's limit allows."),
            retry=True,
        )
    if family == "media":
        return Explanation(
            _("The channel refused the post's picture or video file."),
            _("Fix the file in the campaign, apply the campaign again, then retry."),
            retry=True,
        )
    if family == "address":
        return Explanation(
            _("A subscriber's e-mail address is not valid."),
            _("Correct the address in the community's subscriber list, import it, then retry."),
            retry=True,
        )
    if family == "content":
        return Explanation(
            _("The channel refused the post's content."),
            _("Fix the content in the campaign, apply the campaign again, then retry."),
            retry=True,
        )
    if family == "smtp":
        return Explanation(
            _("The e-mail server refused or did not answer."),
            _("Ask the system administrator to check the e-mail server, then retry."),
            retry=True,
        )
    if post.transient_failures:
        return Explanation(
            _("The channel failed %(n)s times in a row.") % {"n": post.transient_failures},
            _("Check that the channel works again, then retry."),
            retry=True,
        )
    return Explanation(
        _("The channel refused this post."),
        _("Fix the campaign (content or media), apply it again, then retry."),
        retry=True,
    )


def refusal(code: str, values: Mapping[str, Any], *, states: Mapping[str, str], _: Gettext) -> str:
    """Why a person's action on a post or account was refused (a ``PostActionRefused``'s
    code and values); ``states``: the reader's names of post states."""
    shown = {**values, "state": states.get(str(values.get("state", "")), values.get("state"))}
    messages = {
        "no_post": _("There is no post %(id)s."),
        "not_retryable": _(
            "Post %(id)s is %(state)s: only a failed, unconfirmed or disconnected post can be "
            "retried."
        ),
        "account_unhealthy": _(
            "Account %(account)s still needs reconnecting: renew its token, then press “Token "
            "renewed: mark healthy” on the community's page."
        ),
        "not_cancellable": _("Post %(id)s is %(state)s and cannot be cancelled."),
        "not_unconfirmed": _("Post %(id)s is %(state)s: only an unconfirmed post is marked so."),
        "no_account": _("There is no channel account %(account)s."),
    }
    template = messages.get(code)
    return template % shown if template else _("That cannot be done now.")


def problem_text(problem: Problem, _: Gettext) -> tuple[str, str]:
    """A file's problem (message, hint) in the reader's language, from its code and values;
    the English message and hint for a problem recorded without a code."""
    values = dict(problem.values)
    write_relative = _("Put the file in the media folder and write its path relative to it.")
    known: Mapping[str, tuple[str, str]] = {
        "required": (_("is required but missing"), ""),
        "unknown_field": (
            _("is not a known field (check its spelling)"),
            _("Did you mean %(close)s?") if values.get("close") else "",
        ),
        "unreadable_value": (
            _("cannot read the value %(value)s (check the date, time or number)"),
            "",
        ),
        "unknown_community": (
            _("there is no community %(slug)s"),
            _("Did you mean %(close)s?")
            if values.get("close")
            else _("Check the communities page, or import the community first."),
        ),
        "media_empty": (_("names no file"), write_relative),
        "media_name": (_("is not a file name (too long, or has control characters)"), ""),
        "media_absolute": (
            _("%(path)s is a path from the root; write it relative"),
            write_relative,
        ),
        "media_climbs": (_("%(path)s climbs out of the media folder with “..”"), write_relative),
        "media_link": (_("%(path)s is a link that leads out of the media folder"), write_relative),
        "media_not_file": (_("%(path)s is not a regular file"), write_relative),
        "media_not_found": (
            _("the media file %(path)s is not in the media folder"),
            _("Upload it on the media library page: a file of the same name is found there."),
        ),
        "media_no_consent": (
            _("people can be recognised in %(path)s and no consent of theirs is recorded"),
            _("Record their consent on the file's page in the media library, or use another file."),
        ),
        "media_not_in_library": (
            _("%(path)s is not in the media library"),
            _("Upload it on the media library page, or write its name as the library shows it."),
        ),
        "outcome_header": (
            _(
                "the columns are community, month, sales, bookings and visitors (community "
                "and month required); this header has %(found)s"
            ),
            "",
        ),
        "outcome_month": (_("write the month as YYYY-MM, e.g. 2570-01 (or 2027-01)"), ""),
        "outcome_amount": (
            _("is not an amount in baht of 0 or more with at most two decimals (e.g. 98,500.50)"),
            "",
        ),
        "outcome_count": (_("must be a whole number, 0 or more"), ""),
        "outcome_duplicate": (
            _("%(slug)s %(month)s is already on line %(line)s"),
            _("Keep one line per community and month."),
        ),
    }
    found = known.get(problem.code or "")
    if found is None:
        return problem.message, problem.hint or ""
    message, hint = found
    return message % values, hint % values


def people_label(value: str, _: Gettext) -> str:
    """Whether people appear in a media file, in words."""
    labels = {
        "unknown": _("not said yet whether people appear"),
        "none": _("no one can be recognised"),
        "yes": _("people can be recognised"),
    }
    return labels.get(value, value)


def consent_label(value: str, _: Gettext) -> str:
    """The consent recorded for the people in a media file, in words."""
    labels = {
        "not-needed": _("consent not needed"),
        "missing": _("no consent recorded"),
        "written": _("consent given in writing"),
        "electronic": _("consent given electronically"),
    }
    return labels.get(value, value)


def media_kind_label(value: str, _: Gettext) -> str:
    """A media library item's kind, in words."""
    labels = {"image": _("photo"), "video": _("video"), "template": _("e-mail template")}
    return labels.get(value, value)


def outcome_label(outcome: AttemptOutcome, _: Gettext) -> str:
    """An attempt's outcome, in words."""
    labels = {
        AttemptOutcome.UNKNOWN: _("in progress or interrupted"),
        AttemptOutcome.PUBLISHED: _("published"),
        AttemptOutcome.TRANSIENT: _("temporary failure"),
        AttemptOutcome.RATE_LIMITED: _("too many requests, waited"),
        AttemptOutcome.AUTH_EXPIRED: _("account needs reconnecting"),
        AttemptOutcome.PERMANENT: _("refused by the channel"),
        AttemptOutcome.RECONCILED_FOUND: _("found on the channel"),
        AttemptOutcome.RECONCILED_ABSENT: _("checked: not on the channel"),
        AttemptOutcome.UNCONFIRMED: _("could not be confirmed"),
    }
    return labels[outcome]


def health_advice(health: str, _: Gettext) -> str:
    """What to do about a channel account in ``health`` (empty when nothing)."""
    if health == "needs_reconnect":
        return _("Renew the account's token, then press “Token renewed: mark healthy”.")
    if health == "permission_lost":
        return _(
            "A Page admin must give the app its permission back, then press “Token renewed: "
            "mark healthy”."
        )
    return ""


def zone_name(key: str, _: Gettext) -> str:
    """The time zone as people call it: ``Asia/Bangkok`` is Thailand time."""
    names = {"Asia/Bangkok": _("Thailand time"), "UTC": _("Coordinated Universal Time")}
    return names.get(key, key)


def sort_label(key: str, _: Gettext) -> str:
    """A report's sort key (``rate``, ``growth``, ...) in words."""
    labels = {
        "rate": _("engagement rate"),
        "interactions": _("interactions"),
        "reach": _("reach (views and emails sent)"),
        "views": _("views"),
        "posts": _("posts published"),
        "growth": _("change in interactions against the previous period"),
        "rate-change": _("change in engagement rate"),
        "name": _("Thai name"),
        "slug": _("short name (slug)"),
        "province": _("province"),
    }
    return labels.get(key, key)


def audit_sentence(
    entry: AuditLog, *, names: Mapping[str, str], names_by_id: Mapping[str, str], _: Gettext
) -> str:
    """An audit entry as a sentence with people's display names: ``มาลี อนุมัติแคมเปญ
    songkran``.  ``names``: display names by username; ``names_by_id``: by user id."""
    actors = {"command line": _("someone on the command line"), "system": _("the system")}
    who = names.get(entry.actor) or actors.get(entry.actor, entry.actor)
    what = entry.object_id
    if entry.object_type == "user":
        what = names_by_id.get(what) or str(entry.detail.get("username") or what)
    elif entry.object_type == "api_token" and entry.detail.get("owner"):
        owner = str(entry.detail["owner"])
        what = names.get(owner, owner)
    actions: Mapping[str, str] = {
        "campaign.apply": _("%(who)s saved campaign %(what)s"),
        "campaign.approve": _("%(who)s approved campaign %(what)s"),
        "campaign.pause": _("%(who)s paused campaign %(what)s"),
        "campaign.resume": _("%(who)s resumed campaign %(what)s"),
        "campaign.cancel": _("%(who)s cancelled campaign %(what)s"),
        "post.retry": _("%(who)s retried post #%(what)s"),
        "post.cancel": _("%(who)s cancelled post #%(what)s"),
        "post.resolve": _("%(who)s marked post #%(what)s as published"),
        "account.reconnected": _("%(who)s marked account %(what)s as reconnected"),
        "community.import_subscribers": _("%(who)s imported subscribers of %(what)s"),
        "community.creator_video": _("%(who)s added a creator's video to %(what)s"),
        "outcomes.import": _("%(who)s imported outcomes from %(what)s"),
        "user.sign_in": _("%(who)s signed in"),
        "user.sign_in_failed": _("a sign-in as %(what)s failed"),
        "user.preferences": _("%(who)s changed their preferences"),
        "user.password": _("%(who)s changed the password of %(what)s"),
        "user.password_failed": _("%(who)s gave a wrong current password"),
        "user.create": _("%(who)s created user %(what)s"),
        "user.change": _("%(who)s changed user %(what)s"),
        "user.token": _("%(who)s made an access token for %(what)s"),
        "user.token_revoke": _("%(who)s revoked an access token of %(what)s"),
        "media.upload": _("%(who)s uploaded media file #%(what)s"),
        "media.consent": _("%(who)s recorded who appears in media file #%(what)s"),
    }
    template = actions.get(entry.action)
    if template is None:
        return _("%(who)s: %(action)s on %(what)s") % {
            "who": who,
            "action": entry.action,
            "what": what,
        }
    return template % {"who": who, "what": what}


def audit_details(detail: Mapping[str, Any], _: Gettext) -> list[str]:
    """An audit entry's detail as short phrases (counts and choices in words)."""
    phrases = {
        "added": _("%(value)s posts added"),
        "updated": _("%(value)s posts changed"),
        "cancelled": _("%(value)s posts cancelled"),
        "posts_cancelled": _("%(value)s posts cancelled"),
        "posts_rescheduled": _("%(value)s posts sent again"),
        "rows": _("%(value)s rows"),
        "imported": _("%(value)s subscribers"),
        "file": _("file %(value)s"),
        "address": _("from %(value)s"),
        "sessions_ended": _("%(value)s sessions ended"),
        "tokens_revoked": _("%(value)s tokens revoked"),
        "role": _("role: %(value)s"),
    }
    flags = {
        "back_to_draft": _("back to draft, to be approved again"),
        "single_person": _("single-person mode"),
        "active": _("switched on"),
    }
    reasons = {
        "wrong-password": _("wrong password"),
        "unknown-name": _("unknown name"),
        "switched-off": _("the user is switched off"),
    }
    out = []
    if detail.get("reason") in reasons:
        out.append(reasons[detail["reason"]])
    if detail.get("locked_until"):
        out.append(_("the name is locked for a while"))
    for key, value in sorted(detail.items()):
        if key in flags:
            if value is True:
                out.append(flags[key])
        elif key in phrases and value not in (None, "", 0):
            out.append(phrases[key] % {"value": value})
    return out
