"""What the gateway needs from ``requests`` beyond a call: the environment read once per client, and the causes of a
connection error (to tell a refused connection from a broken one)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import requests


def settle_environment(session: requests.Session, base_url: str) -> None:
    """What ``requests`` reads from the environment at every request (proxies and their exceptions, a CA bundle,
    ``.netrc``), read once for this client's server, as every request would have read it, and the session told not
    to read it again: 1 ms of CPU per request (the whole environment scanned), a tenth of a pull that changed
    nothing. Every URL of a client is on the same server, so the answer is the same for each."""
    url = base_url + "/"
    proxies = requests.utils.get_environ_proxies(url, no_proxy=session.proxies.get("no_proxy"))
    # A request's own proxies (here the environment's) win over the session's, as in ``merge_environment_settings``.
    session.proxies = {**session.proxies, **proxies}
    if session.verify is True or session.verify is None:
        bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        if bundle:
            session.verify = bundle
    if session.auth is None:
        session.auth = requests.utils.get_netrc_auth(url)
    session.trust_env = False


def causes(exc: BaseException) -> Iterator[BaseException]:
    seen = set()
    stack: list[Any] = [exc]
    while stack:
        current = stack.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        if isinstance(current, BaseException):
            stack.extend(current.args)
            stack.append(current.__cause__)
            stack.append(current.__context__)
            stack.append(getattr(current, "reason", None))
