"""What a referential pull checks in what Sage answered before believing it (``services._pull``): ``read`` is one read
of one kind (its items, every code Sage lists, the problems reported)."""

from __future__ import annotations

from django.conf import settings


def incremental_read_missed(read, held: set[str], marked_gone: set[str]) -> bool:
    """Whether Sage's list of codes names items that an incremental read should have brought and did not: codes SFD
    had marked gone, listed again, or codes SFD never held, neither read nor reported as unreadable. Their
    ``modified_at`` is older than the newest SFD had seen: an item restored or imported with its old date, a server
    whose clock is behind. ``modified_since`` only narrows what is read; the list of codes is what is believed."""
    came = {item["code"] for item in read.items}
    if (marked_gone & read.present) - came:
        return True
    reported = {problem["code"] for problem in read.problems if problem.get("code")}
    return bool(read.present - held - marked_gone - came - reported)


def too_many_gone(read, held: set[str]) -> bool:
    """An answer that would take away more than the allowed share of what SFD holds, or all of it, is not believed
    on its own: an empty or truncated list is far more often a fault (a proxy, a half-restored server) than a real
    deletion, and applying it would make every export fail until someone repairs it."""
    if not held:
        return False
    gone = len(held - read.present)
    return not read.present or gone > settings.REFERENTIAL_MAX_GONE_SHARE * len(held)
