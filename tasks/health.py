"""Account health: check the tokens of accounts with posts coming up, before they are due."""

from __future__ import annotations

import logging

from channels.base import Account
from channels.errors import AuthExpired, ChannelError
from marketing.db import get_engine
from marketing.publishing import AccountToCheck, accounts_to_check, record_account_check
from marketing.settings import MissingSecret, get_secret
from tasks import wiring
from tasks.app import app
from tasks.housekeeping import record_heartbeat

log = logging.getLogger(__name__)


def check_one(account: AccountToCheck) -> ChannelError | None:
    """Check one account's token with its channel; return the error, if any."""
    try:
        token = get_secret(account.secret_name) if account.secret_name else None
    except MissingSecret as exc:
        return AuthExpired(str(exc), code="missing_secret", hint=str(exc))
    try:
        wiring.publisher(account.kind).check_account(
            Account(account.kind.value, account.external_id, account.display_name, token)
        )
    except ChannelError as error:
        return error
    return None


@app.task(name="marketing.check_accounts", time_limit=300, soft_time_limit=280)
def check_accounts() -> dict[str, int]:
    """Check every healthy account with a post due within a day; mark the broken ones."""
    engine = get_engine()
    checked = broken = 0
    for account in accounts_to_check(engine=engine):
        error = check_one(account)
        if error is not None and not isinstance(error, AuthExpired):
            log.warning("could not check account %s: %s", account.slug, error)
        health = record_account_check(engine=engine, account_id=account.account_id, error=error)
        checked += 1
        broken += health.value != "ok"
    record_heartbeat("account-checks", checked=checked, broken=broken)
    return {"checked": checked, "broken": broken}
