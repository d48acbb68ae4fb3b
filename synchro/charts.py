"""The charts of the « Tableau de bord », drawn on the server as SVG: no script, no library, no CDN.

Readable without colour: the refused entries are hatched bars, the integrated ones plain; each bar carries its
numbers as a tooltip (``<title>``), and the page gives the same numbers as a table. Accessible: the SVG is an image
with a title and a description that sums it up in words.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

WIDTH, HEIGHT = 720, 240
LEFT, RIGHT, TOP, BOTTOM = 40, 8, 12, 26


@dataclass(frozen=True)
class Day:
    day: dt.date
    integrated: int
    rejected: int

    @property
    def label(self) -> str:
        return date_format(self.day, "d/m")


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    refused: bool
    title: str


@dataclass(frozen=True)
class Tick:
    at: float
    label: str


@dataclass(frozen=True)
class DailyChart:
    days: list[Day]
    bars: list[Bar]
    y_ticks: list[Tick]
    x_ticks: list[Tick]
    title: str
    description: str
    integrated: int
    rejected: int
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right: int = WIDTH - RIGHT
    bottom: int = HEIGHT - BOTTOM

    @property
    def empty(self) -> bool:
        return not (self.integrated or self.rejected)

    @property
    def center(self) -> int:
        return (self.left + self.right) // 2

    @property
    def middle(self) -> int:
        return (TOP + self.bottom) // 2


def _nice_ceiling(value: int) -> int:
    """The smallest of 1, 2, 5 × 10ⁿ at or above ``value`` (at least 1): the top of the axis."""
    if value <= 1:
        return 1
    power = 10 ** math.floor(math.log10(value))
    return next(step * power for step in (1, 2, 5, 10) if step * power >= value)


def _bar_title(day: Day, *, refused: bool) -> str:
    if refused:
        words = ngettext("%(n)d écriture refusée", "%(n)d écritures refusées", day.rejected) % {"n": day.rejected}
    else:
        words = ngettext("%(n)d écriture intégrée", "%(n)d écritures intégrées", day.integrated) % {"n": day.integrated}
    return f"{day.label} : {words}"


def daily_entries_chart(counts: dict[dt.date, tuple[int, int]], *, first_day: dt.date, last_day: dt.date) -> DailyChart:
    """Entries integrated and refused per day, from ``first_day`` to ``last_day``; ``counts`` maps a day to
    (integrated, refused), a day without an entry being absent."""
    days = [
        Day(day, *counts.get(day, (0, 0)))
        for day in (first_day + dt.timedelta(days=offset) for offset in range((last_day - first_day).days + 1))
    ]
    top = _nice_ceiling(max([max(day.integrated, day.rejected) for day in days], default=0))
    plot_height = HEIGHT - TOP - BOTTOM
    slot = (WIDTH - LEFT - RIGHT) / len(days)
    bar_width = slot * 0.38

    def height_of(value: int) -> float:
        # A day with one refusal out of hundreds still shows.
        return max(value / top * plot_height, 2.0) if value else 0.0

    bars = []
    for index, day in enumerate(days):
        start = LEFT + index * slot + slot * 0.1
        for value, refused, x in ((day.integrated, False, start), (day.rejected, True, start + bar_width + 1)):
            if value:
                height = height_of(value)
                bars.append(
                    Bar(
                        round(x, 2),
                        round(HEIGHT - BOTTOM - height, 2),
                        round(bar_width, 2),
                        round(height, 2),
                        refused,
                        _bar_title(day, refused=refused),
                    )
                )
    y_ticks = [
        Tick(round(HEIGHT - BOTTOM - plot_height * share, 2), str(round(top * share)))
        for share in (0, 0.5, 1)
        if share == 0 or top * share == round(top * share)
    ]
    # Every fifth day back from the last one, which is always labelled.
    x_ticks = [
        Tick(round(LEFT + index * slot + slot / 2, 2), day.label)
        for index, day in enumerate(days)
        if (len(days) - 1 - index) % 5 == 0
    ]
    integrated = sum(day.integrated for day in days)
    rejected = sum(day.rejected for day in days)
    period = _("du %(first)s au %(last)s") % {
        "first": date_format(first_day, "j F Y"),
        "last": date_format(last_day, "j F Y"),
    }
    title = ngettext(
        "Écritures intégrées et refusées par jour, sur le dernier jour",
        "Écritures intégrées et refusées par jour, sur les %(n)d derniers jours",
        len(days),
    ) % {"n": len(days)}
    said = [
        ngettext("%(n)d écriture intégrée", "%(n)d écritures intégrées", integrated) % {"n": integrated}
        if integrated
        else "",
        ngettext("%(n)d écriture refusée", "%(n)d écritures refusées", rejected) % {"n": rejected} if rejected else "",
    ]
    description = _("%(period)s : %(counts)s.") % {
        "period": period.capitalize(),
        "counts": ", ".join(words for words in said if words) or _("aucune écriture intégrée ni refusée"),
    }
    return DailyChart(days, bars, y_ticks, x_ticks, title, description, integrated, rejected)
