"""The gateway to Sage FRP 1000: one HTTP session, a timeout on every call, typed errors in French.

Idempotent calls (GET, and PATCH that carries its own ``update_id``) are retried with exponential backoff and
jitter; a POST of entries is retried only when Sage said it did not process it (503, 429, refused connection):
when its outcome may be unknown, only the caller can reconcile it by looking the entries up by their keys. One
retry loop, ``SageClient.retrying``, serves both.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import quote

import requests
from urllib3.exceptions import NewConnectionError

from .schemas import ItemError, ItemProblem, clean_company, clean_item
from .transport import causes, settle_environment

NOT_SAGE = "Cette adresse ne répond pas comme un serveur Sage FRP 1000."

T = TypeVar("T")
# One error Sage raised against an entry: ``(code, field, message)``.
ErrorTriple = tuple[str, str, str]


def error_triples(errors: Iterable[dict]) -> list[ErrorTriple]:
    """Sage's ``{code, field, message}`` errors as plain triples, a missing code or field made explicit."""
    return [(e.get("code") or "?", e.get("field") or "", e.get("message") or "") for e in errors]


class SageError(Exception):
    """Base of every gateway error; ``message`` is short, French, and safe to show and to store."""

    def __init__(self, message: str, *, detail: str = ""):
        super().__init__(message)
        self.message = message
        self.detail = detail


class SageUnavailable(SageError):
    """The server could not be reached or answered with a transient error.

    ``outcome_unknown`` is true when the request may have been processed (timeout while waiting for the
    answer, connection reset, 5xx): a write must then be reconciled, never blindly resent.
    """

    def __init__(self, message: str, *, outcome_unknown: bool, retry_after: float | None = None, detail: str = ""):
        super().__init__(message, detail=detail)
        self.outcome_unknown = outcome_unknown
        self.retry_after = retry_after


class SageUnreachable(SageUnavailable):
    """No HTTP answer at all: the name did not resolve, the connection was refused, timed out, broke, or TLS failed."""


class SageAuthError(SageError):
    pass


class SageRejected(SageError):
    """The server refused the request itself (4xx); ``errors`` are Sage's ``{code, field, message}``."""

    def __init__(self, message: str, *, status: int, errors: list[dict] | None = None):
        super().__init__(message)
        self.status = status
        self.errors = errors or []

    @property
    def code(self) -> str | None:
        return self.errors[0].get("code") if self.errors else None


class SageProtocolError(SageError):
    """The answer is not what the contract says: not JSON, the wrong shape, too large, too slow."""


@dataclass
class Page:
    items: list[dict]
    problems: list[ItemProblem] = field(default_factory=list)
    next_cursor: str | None = None


@dataclass(frozen=True)
class EntryResult:
    external_id: str
    status: str  # accepted, duplicate, rejected
    piece_number: str | None = None
    errors: tuple[dict, ...] = ()


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _errors_of(body: Any) -> list[dict]:
    if isinstance(body, dict) and isinstance(body.get("errors"), list):
        return [error for error in body["errors"] if isinstance(error, dict)]
    return []


class SageClient:
    api_prefix = "/api/v1"

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 30.0,
        retries: int = 3,
        backoff: float = 0.5,
        max_retry_wait: float = 30.0,
        max_response_bytes: int = 10 * 1024 * 1024,
        session: requests.Session | None = None,
    ):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_retry_wait = max_retry_wait
        self.max_response_bytes = max_response_bytes
        if session is None:
            session = requests.Session()
            settle_environment(session, self.base_url)
        self.session = session
        self.session.headers.update(
            {
                "Authorization": f"Bearer {api_key}",
                "Accept": "application/json",
                "User-Agent": "SFD-Synchro/1",
            }
        )

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> SageClient:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # --- transport ----------------------------------------------------------------------------------

    def _url(self, *parts: str) -> str:
        return self.base_url + self.api_prefix + "/" + "/".join(quote(part, safe="") for part in parts)

    def _read_body(self, response: requests.Response, deadline: float) -> bytes:
        declared = response.headers.get("Content-Length")
        if declared and declared.isascii() and declared.isdigit() and int(declared) > self.max_response_bytes:
            response.close()
            raise SageProtocolError("Réponse de Sage FRP 1000 trop volumineuse.", detail=f"{declared} octets annoncés")
        chunks = []
        size = 0
        while True:
            # read1: whatever has arrived, so that a server dripping bytes cannot outlive the deadline.
            chunk = response.raw.read1(65536)
            if not chunk:
                break
            size += len(chunk)
            if size > self.max_response_bytes:
                response.close()
                raise SageProtocolError("Réponse de Sage FRP 1000 trop volumineuse.", detail=f"> {size} octets")
            if time.monotonic() > deadline:
                response.close()
                raise SageUnreachable("Sage FRP 1000 répond trop lentement (délai dépassé).", outcome_unknown=True)
            chunks.append(chunk)
        return b"".join(chunks)

    def _send(self, method: str, url: str, **kwargs) -> tuple[int, Any, requests.Response]:
        started = time.monotonic()
        try:
            response = self.session.request(
                method, url, timeout=(min(self.timeout, 10.0), self.timeout), stream=True, **kwargs
            )
            raw = self._read_body(response, started + self.timeout * 2)
        except requests.ConnectTimeout as exc:
            raise SageUnreachable(
                "Sage FRP 1000 est injoignable (délai de connexion dépassé).",
                outcome_unknown=False,
                detail=str(exc),
            ) from None
        except requests.ReadTimeout as exc:
            raise SageUnreachable(
                "Sage FRP 1000 ne répond pas (délai dépassé).", outcome_unknown=True, detail=str(exc)
            ) from None
        except requests.ConnectionError as exc:
            refused = any(isinstance(arg, NewConnectionError) for arg in causes(exc))
            if refused:
                raise SageUnreachable(
                    "Sage FRP 1000 est injoignable (connexion refusée).",
                    outcome_unknown=False,
                    detail=str(exc),
                ) from None
            raise SageUnreachable(
                "La connexion avec Sage FRP 1000 a été interrompue.", outcome_unknown=True, detail=str(exc)
            ) from None
        except requests.RequestException as exc:
            raise SageUnreachable(
                "La connexion avec Sage FRP 1000 a été interrompue.", outcome_unknown=True, detail=str(exc)
            ) from None
        status = response.status_code
        content_type = response.headers.get("Content-Type", "")
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                if status < 400:
                    raise SageProtocolError(
                        "Réponse illisible de Sage FRP 1000 (JSON invalide).",
                        detail=raw[:200].decode("utf-8", "replace"),
                    ) from None
                body = None
        if status in (401, 403):
            raise SageAuthError("Clé API refusée par Sage FRP 1000.")
        if status == 429 or status >= 500:
            what = "surchargé" if status in (429, 503) else "en erreur"
            if body is None and "html" in content_type:
                what = "en erreur (page HTML reçue)"
            raise SageUnavailable(
                f"Sage FRP 1000 est {what} (HTTP {status}).",
                # 503 and 429 say the request was not processed; any other 5xx may have been.
                outcome_unknown=status not in (429, 503),
                retry_after=_retry_after(response),
            )
        if status >= 400:
            errors = _errors_of(body)
            message = errors[0].get("message") if errors else None
            raise SageRejected(
                str(message or f"Requête refusée par Sage FRP 1000 (HTTP {status})."),
                status=status,
                errors=errors,
            )
        if status >= 300 or body is None:
            raise SageProtocolError(f"Réponse inattendue de Sage FRP 1000 (HTTP {status}).")
        return status, body, response

    def _wait(self, attempt: int, error: SageUnavailable) -> None:
        if error.retry_after is not None:
            delay = error.retry_after
        else:
            delay = self.backoff * (2**attempt)
            delay += random.uniform(0, delay)  # noqa: S311 - jitter, not cryptography
        time.sleep(min(delay, self.max_retry_wait))

    def retrying(
        self,
        call: Callable[[], T],
        *,
        unknown_too: bool,
        failure: SageUnavailable | None = None,
        between: Callable[[], None] | None = None,
    ) -> T:
        """``call`` until it succeeds or the retries run out; only a ``SageUnavailable`` is retried, and only when
        Sage said it did not process the request, unless ``unknown_too`` (an idempotent call).

        ``failure``: how a first try made elsewhere ended (it counts as the first attempt); ``between``: what to do
        between two tries (a sync renews its hold on the company)."""
        attempt = 0
        while True:
            try:
                if failure is not None:
                    error, failure = failure, None
                    raise error
                return call()
            except SageUnavailable as error:
                if (error.outcome_unknown and not unknown_too) or attempt >= self.retries:
                    raise
                self._wait(attempt, error)
                attempt += 1
                if between is not None:
                    between()

    def _call(self, method: str, url: str, *, retry: bool, **kwargs) -> Any:
        if not retry:
            return self._send(method, url, **kwargs)[1]
        return self.retrying(lambda: self._send(method, url, **kwargs)[1], unknown_too=True)

    # --- the contract -------------------------------------------------------------------------------

    def health(self) -> dict:
        """The contract's ``GET /health``: ``{"status": "ok", "version": "…"}``. Any other answer, JSON or not, is not
        a Sage FRP 1000 server that is up: the URL is probably wrong."""
        body = self._call("GET", self._url("health"), retry=False)
        if not isinstance(body, dict) or body.get("status") != "ok":
            raise SageProtocolError(NOT_SAGE, detail=str(body)[:200])
        version = body.get("version")
        if not isinstance(version, str) or not 0 < len(version.strip()) <= 100:
            raise SageProtocolError(NOT_SAGE, detail=str(body)[:200])
        return body

    def _page(self, url: str, params: dict, cursor: str | None) -> tuple[list, str | None]:
        """One page: its raw items and the cursor of the next one (checked by ``_pages``)."""
        query = dict(params)
        if cursor:
            query["cursor"] = cursor
        body = self._call("GET", url, retry=True, params=query)
        if not isinstance(body, dict) or not isinstance(body.get("items"), list):
            raise SageProtocolError("Réponse inattendue de Sage FRP 1000 (liste « items » absente).")
        return body["items"], body.get("next_cursor")

    def _pages(self, url: str, params: dict) -> Iterator[tuple[list, str | None]]:
        """Every page in order. While the caller works on one page, the next is already asked for (one request at a
        time, in a thread of this generator's own): Sage's time to read and send it is hidden behind SFD's work. An
        error of that request, retries exhausted, is raised where the caller asks for that page, as before."""
        seen_cursors: set[str] = set()
        items, cursor = self._page(url, params, None)
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sage-page") as ahead:
            while True:
                if cursor is not None and (not isinstance(cursor, str) or cursor in seen_cursors):
                    raise SageProtocolError("Pagination incohérente de Sage FRP 1000 (curseur invalide ou répété).")
                following = None
                if cursor:
                    seen_cursors.add(cursor)
                    following = ahead.submit(self._page, url, params, cursor)
                try:
                    yield items, cursor
                except BaseException:
                    # The caller stops here: the request in flight ends (the pool waits for it) and is dropped, so
                    # that the session is never used by two threads at once.
                    if following is not None:
                        following.cancel()
                    raise
                if following is None:
                    return
                items, cursor = following.result()

    def companies(self) -> tuple[list[dict], list[ItemProblem]]:
        items, problems = [], []
        for raw_items, _ in self._pages(self._url("companies"), {}):
            for raw in raw_items:
                try:
                    items.append(clean_company(raw))
                except ItemError as error:
                    code = raw.get("code") if isinstance(raw, dict) else None
                    problems.append(ItemProblem(str(code) if code is not None else None, str(error)))
        return items, problems

    def iter_referential(
        self, company_code: str, kind: str, *, modified_since=None, page_size: int = 1000
    ) -> Iterator[Page]:
        """Each page of one referential kind, its items cleaned; a code seen twice is reported, not kept."""
        params: dict[str, Any] = {"limit": page_size}
        if modified_since is not None:
            params["modified_since"] = modified_since.isoformat()
        seen: set[str] = set()
        for raw_items, cursor in self._pages(self._url("companies", company_code, kind), params):
            page = Page(items=[], next_cursor=cursor)
            for raw in raw_items:
                raw_code = raw.get("code") if isinstance(raw, dict) else None
                code = str(raw_code) if raw_code is not None else None
                try:
                    item = clean_item(kind, raw)
                except ItemError as error:
                    page.problems.append(ItemProblem(code, str(error)))
                    continue
                if item["code"] in seen:
                    page.problems.append(ItemProblem(item["code"], "code en double dans la réponse de Sage (ignoré)"))
                    continue
                seen.add(item["code"])
                page.items.append(item)
            yield page

    def referential_codes(self, company_code: str, kind: str, *, page_size: int = 5000) -> set[str]:
        """Every code of one kind that Sage still has: what disappeared upstream is what is not here."""
        codes: set[str] = set()
        url = self._url("companies", company_code, kind)
        for raw_items, _ in self._pages(url, {"limit": page_size, "fields": "code"}):
            codes.update(
                code.strip() for raw in raw_items if isinstance(raw, dict) and isinstance(code := raw.get("code"), str)
            )
        return codes

    def post_entries(
        self, company_code: str, entries: list[dict], *, simulate: bool = False, encoded: list[str] | None = None
    ) -> list[EntryResult]:
        """``encoded``: each entry's JSON as the caller already encoded it (the exporter writes the same text into its
        item), joined into the body instead of encoding every entry again."""
        mode = "simulation" if simulate else "real"
        if encoded is None:
            request: dict = {"json": {"mode": mode, "entries": entries}}
        else:
            text = f'{{"mode": {json.dumps(mode)}, "entries": [{", ".join(encoded)}]}}'
            request = {"data": text.encode(), "headers": {"Content-Type": "application/json"}}
        try:
            body = self._call("POST", self._url("companies", company_code, "entries"), retry=False, **request)
        except SageProtocolError as error:
            # An unreadable answer to a batch may follow a booking: only a lookup by key can tell.
            raise SageUnavailable(error.message, outcome_unknown=True, detail=error.detail) from None
        results = body.get("results") if isinstance(body, dict) else None
        if not isinstance(results, list) or len(results) != len(entries):
            raise SageUnavailable("Réponse incomplète de Sage FRP 1000 au lot d'écritures.", outcome_unknown=True)
        parsed = []
        for sent, result in zip(entries, results, strict=True):
            if not isinstance(result, dict) or result.get("status") not in (
                "accepted",
                "duplicate",
                "rejected",
            ):
                raise SageUnavailable("Réponse illisible de Sage FRP 1000 au lot d'écritures.", outcome_unknown=True)
            if str(result.get("external_id")) != sent["external_id"]:
                raise SageUnavailable("Réponse de Sage FRP 1000 dans le désordre.", outcome_unknown=True)
            parsed.append(
                EntryResult(
                    external_id=sent["external_id"],
                    status=result["status"],
                    piece_number=result.get("piece_number"),
                    errors=tuple(_errors_of(result)),
                )
            )
        return parsed

    def get_entry(self, company_code: str, external_id: str) -> dict | None:
        """The entry Sage booked under our key, or None when Sage has none (safe to send again)."""
        try:
            body = self._call("GET", self._url("companies", company_code, "entries", external_id), retry=True)
        except SageRejected as error:
            if error.status == 404 and error.code == "ENTRY_UNKNOWN":
                return None
            raise
        if not isinstance(body, dict) or not body.get("piece_number"):
            raise SageProtocolError("Réponse inattendue de Sage FRP 1000 (recherche d'écriture).")
        return body

    def patch_entry(self, company_code: str, piece_number: str, update: dict) -> dict:
        body = self._call(
            "PATCH", self._url("companies", company_code, "entries", piece_number), retry=True, json=update
        )
        if not isinstance(body, dict) or body.get("status") not in ("applied", "duplicate"):
            raise SageProtocolError("Réponse inattendue de Sage FRP 1000 (mise à jour d'écriture).")
        return body
