"""Sage FRP 1000: the HTTP gateway (``client``), what it validates (``schemas``), a fake server (``stub``)."""
