"""Conventions the whole service shares, written once.

This module imports nothing, so every package can use it without an import cycle:
``campaigns/`` (which must not import the models), the reference data loader, the web app's
route patterns, the reports and the database models alike.
"""

from __future__ import annotations

#: What a slug may be (campaigns, communities, accounts, topics): lower-case letters, digits
#: and '-', starting with a letter or a digit, 80 characters at most.  A regular expression
#: for pydantic's ``pattern=`` and FastAPI's ``Path(pattern=...)``.
SLUG_PATTERN = r"^[a-z0-9][a-z0-9-]{0,79}$"

#: The time zone of a community, of the programme and of the times staff see, unless
#: configured otherwise (``MARKETING_TIMEZONE``; a community's own ``timezone``).
DEFAULT_TIMEZONE = "Asia/Bangkok"
