"""The cache of page images (``var/scan-pages``) prunes itself by last use: a cache, never the documents."""

from __future__ import annotations

import os

from invoices.views_document import PRUNE_MARK, prune_page_cache

NOW = 2_000_000_000.0  # a fixed instant: the ages below are relative to it, never to today
DAY = 86400


def test_pages_unused_for_longer_than_the_limit_go_and_the_rest_stays(tmp_path):
    ages = {"old-1.png": 31, "kept-1.png": 29, "partial.tmp": 40, PRUNE_MARK: 400}
    for name, days in ages.items():
        (tmp_path / name).write_bytes(b"x")
        os.utime(tmp_path / name, (NOW - days * DAY, NOW - days * DAY))
    (tmp_path / "sub").mkdir()
    os.utime(tmp_path / "sub", (NOW - 400 * DAY, NOW - 400 * DAY))

    assert prune_page_cache(tmp_path, older_than_days=30, now=NOW) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([PRUNE_MARK, "kept-1.png", "sub"])
    assert prune_page_cache(tmp_path, older_than_days=30, now=NOW) == 0
