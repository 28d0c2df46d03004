"""CSV for people to open in a spreadsheet, safe from formula injection.

Excel, LibreOffice and Google Sheets run a cell that begins with ``=``, ``+``, ``-`` or ``@``
as a formula (``=HYPERLINK(...)`` sends the reader to another site; ``+cmd|' /C calc'!A0``
once started programs through DDE); a leading tab or carriage return hides such a cell from a
quick look.  Campaign labels, community names and channel errors are written by people, so
every CSV the service writes for people goes through :func:`csv_text`, which applies OWASP's
rule: such a *text* cell gets a single quote in front (``'=HYPERLINK(...)``), which the
spreadsheet shows but does not evaluate.

Numbers stay numbers: ``-12`` as an ``int`` or ``float`` is written as it is, so a column of
changes still sums; only strings are neutralised (a string ``"-12"`` becomes ``'-12``; write
numbers as numbers).  CSV the service writes for its own importer (the subscriber upload's
normalised copy) is not for people and keeps its text unchanged.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_cell(value: Any) -> Any:
    """``value`` as a spreadsheet will show it but never run it: a string that begins like a
    formula gets a leading ``'``; anything else (numbers included) is returned unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def csv_text(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """``header`` and ``rows`` as CSV text (``\\n`` line ends), every cell neutralised."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([spreadsheet_cell(name) for name in header])
    writer.writerows([spreadsheet_cell(value) for value in row] for row in rows)
    return out.getvalue()
