"""Listings that fit the terminal: a table when it fits, one card per row when it does not.

Slugs, ids and times -- what one types or reads next -- are never cut or wrapped; numbers are
never cut ("7.8…"); Thai names and messages wrap (rich measures cell width, so Thai's
zero-width vowels and tone marks count right).
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

# A listing is a table when its whole columns fit and every other column gets this many cells;
# otherwise (a narrow terminal) it is drawn as one card per row.
FLEXIBLE = 12


def listing(
    console: Console | int,
    *,
    title: str,
    headings: Sequence[str],
    rows: Sequence[Sequence[str | Text]],
    keys: Sequence[int] = (0,),
    numeric: Sequence[int] = (),
) -> RenderableType:
    """``rows`` under ``headings`` as a table when the terminal is wide enough (see
    :data:`FLEXIBLE`), else as one card per row.  Columns ``keys`` (slugs, ids, times) never
    wrap or shrink; ``numeric`` ones are right-aligned and never cut; the others wrap between
    words (``fold`` for a long URL).  Strings are shown as they are (no rich markup); give a
    :class:`Text` to style a cell.  ``console``: the console that will print it, or its width."""
    width = console if isinstance(console, int) else console.width
    cells = [[Text(v) if isinstance(v, str) else v for v in row] for row in rows]
    widest = [max((row[i].cell_len for row in cells), default=0) for i in range(len(headings))]
    # A heading wraps between words, never inside one: its longest word is a column's least.
    widest = [
        max([wide, *(Text(word).cell_len for word in heading.split())])
        for wide, heading in zip(widest, headings, strict=True)
    ]
    fixed = [
        max(widest[i], Text(heading).cell_len) if i in keys or i in numeric else None
        for i, heading in enumerate(headings)
    ]
    # Every fixed column whole, every other at least FLEXIBLE wide (or as wide as it needs).
    needed = sum(
        whole if whole is not None else min(widest[i], FLEXIBLE) for i, whole in enumerate(fixed)
    )
    if needed + 3 * len(headings) + 1 <= width:
        table = Table(title=title, title_justify="left")
        for index, heading in enumerate(headings):
            whole = fixed[index]
            if whole is not None:
                table.add_column(
                    heading,
                    no_wrap=True,
                    justify="right" if index in numeric else "left",
                    min_width=whole,
                )
            else:
                table.add_column(heading, overflow="fold", min_width=min(widest[index], FLEXIBLE))
        for row in cells:
            table.add_row(*row)
        return table
    cards: list[RenderableType] = [Text(title, style="bold")]
    label_width = min(max(Text(h).cell_len for h in headings), width // 3)
    for row in cells:
        card = Table(box=None, show_header=False, pad_edge=False, padding=(0, 1))
        card.add_column(style="dim", no_wrap=True, min_width=label_width)
        card.add_column(overflow="fold")
        for index, (heading, value) in enumerate(zip(headings, row, strict=True)):
            if index in keys or value.plain:
                card.add_row(heading, value)
        cards.append(Text(""))
        cards.append(card)
    return Group(*cards)
