"""When the next automatic synchronisation is, in Europe/Paris, whatever the daylight-saving changes.

Rules at the two changes of the year:
- a time that does not exist that night (02:30 on the last Sunday of March) runs at the same instant as if the
  clock had not jumped, i.e. 03:30 summer time — once;
- a time that exists twice (02:30 on the last Sunday of October) runs at its first occurrence — once.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils import formats, timezone

PARIS = ZoneInfo(settings.TIME_ZONE)


def _at(day: dt.date, time: dt.time) -> dt.datetime:
    # fold=0: the first of two ambiguous instants; for a missing time, the offset before the gap.
    local = dt.datetime.combine(day, time).replace(tzinfo=PARIS, fold=0)
    return local.astimezone(dt.UTC)


def next_occurrence(after: dt.datetime, *, frequency: str, time: dt.time, weekday: int | None) -> dt.datetime:
    """The first slot strictly after ``after`` (an aware datetime), as an aware datetime in UTC."""
    local_day = after.astimezone(PARIS).date()
    for offset in range(0, 9):
        day = local_day + dt.timedelta(days=offset)
        if frequency == "weekly" and day.weekday() != weekday:
            continue
        candidate = _at(day, time)
        if candidate > after:
            return candidate
    raise ValueError("no occurrence within nine days")  # pragma: no cover - a week always has the weekday


def describe(moment: dt.datetime | None) -> str:
    """« lundi 30 novembre 2026 à 12:00 »."""
    if moment is None:
        return ""
    local = timezone.localtime(moment, PARIS)
    return f"{formats.date_format(local, 'l j F Y')} à {local:%H:%M}"
