"""A fake Sage FRP 1000 server speaking the contract of DESIGN.md over real HTTP.

Over 450 lines, the whole fake server, route by route, as the contract's table in DESIGN.md lists them.

Standard library only, so that it starts anywhere the app starts. ``/api/v1`` is the ERP's API (bearer
token); ``/_control`` is the test-only control surface (reset, faults, referential mutations, what was
booked), served only when the server is started with ``--enable-control``.
"""

from __future__ import annotations

import base64
import datetime as dt
import fnmatch
import json
import random
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

from . import demo
from .rules import payload_hash, validate_entry
from .store import KINDS, Store, entry_row_to_dict, normalise_timestamp

VERSION = "Sage FRP 1000 (simulateur SFD) 7.0-stub"
MAX_LIMIT = 5000
DEFAULT_LIMIT = 1000
MAX_BATCH = 1000
MAX_BODY = 20 * 1024 * 1024


class Faults:
    """Fault rules, tried in order on every API request.

    A rule: ``{"match": "POST /companies/*/entries", "fault": "status", "status": 500, "probability": 0.2,
    "times": 3, "for_seconds": 60, "after": 1, "delay": 1.0, "retry_after": 2, "size": 1048576}``: ``times`` and
    ``for_seconds`` bound how long it applies; ``after`` lets that many matching requests through first.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.rules: list[dict] = []
        self.rng = random.Random(0)

    def set(self, rules: list[dict], seed: int = 0) -> None:
        now = time.monotonic()
        with self._lock:
            self.rules = [
                dict(rule) | ({"until": now + float(rule["for_seconds"])} if rule.get("for_seconds") else {})
                for rule in rules
            ]
            self.rng = random.Random(seed)

    def pick(self, method: str, path: str) -> dict | None:
        with self._lock:
            for rule in self.rules:
                pattern = rule.get("match", "* *")
                rule_method, _, rule_path = pattern.partition(" ")
                if rule_method not in ("*", method) or not fnmatch.fnmatchcase(path, rule_path or "*"):
                    continue
                if rule.get("times") is not None and rule["times"] <= 0:
                    continue
                if rule.get("until") is not None and time.monotonic() > rule["until"]:
                    continue
                if rule.get("after"):
                    rule["after"] -= 1
                    continue
                if self.rng.random() >= float(rule.get("probability", 1.0)):
                    continue
                if rule.get("times") is not None:
                    rule["times"] -= 1
                return dict(rule)
        return None


class StubServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(
        self,
        address,
        store: Store,
        api_key: str,
        enable_control: bool,
        verbose: bool = False,
        entry_ms: float = 0.0,
    ):
        super().__init__(address, Handler)
        self.store = store
        self.api_key = api_key
        self.enable_control = enable_control
        self.verbose = verbose
        # A real ERP spends milliseconds on each entry it books, most of them waiting (its own database, its
        # locks, the network): a sleep, not CPU, so that the benchmarks see the ERP's pace without its load.
        self.entry_ms = entry_ms
        self.faults = Faults()
        self.stats: dict[str, int] = {}
        self.stats_lock = threading.Lock()

    def count(self, key: str) -> None:
        with self.stats_lock:
            self.stats[key] = self.stats.get(key, 0) + 1


def _encode_cursor(code: str | None) -> str | None:
    return None if code is None else base64.urlsafe_b64encode(code.encode()).decode()


def _decode_cursor(cursor: str) -> str:
    return base64.urlsafe_b64decode(cursor.encode()).decode()


class HttpError(Exception):
    def __init__(self, status: int, code: str, message: str, field: str | None = None):
        super().__init__(message)
        self.status = status
        self.body = {"errors": [{"code": code, "field": field, "message": message}]}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: StubServer
    server_version = "SageFRP1000Stub/7.0"

    def setup(self):
        super().setup()
        # Headers and body leave in two writes: without this, Nagle + delayed ACK add 40 ms per call.
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format, *args):
        if self.server.verbose:
            super().log_message(format, *args)

    # --- plumbing -----------------------------------------------------------------------------------

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def do_PATCH(self):
        self._dispatch("PATCH")

    def do_DELETE(self):
        self._dispatch("DELETE")

    def _send_json(self, status: int, body, headers: dict | None = None) -> None:
        raw = json.dumps(body, ensure_ascii=False).encode()
        self._send_raw(status, raw, "application/json; charset=utf-8", headers)

    def _send_raw(self, status: int, raw: bytes, content_type: str, headers: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(raw)))
        for name, value in (headers or {}).items():
            self.send_header(name, str(value))
        self.end_headers()
        self.wfile.write(raw)

    def _reset(self) -> None:
        """Close the connection with a TCP RST, as a crashing proxy would."""
        self.request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.request.close()

    def _drain_body(self) -> None:
        """Read the whole request body first: a fault answering early must not leave it on a kept-alive socket."""
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self.close_connection = True
            raise HttpError(413, "PAYLOAD_TOO_LARGE", "Requête trop volumineuse.")
        self._body = self.rfile.read(length) if length else b""

    def _read_json(self):
        raw = self._body
        if not raw:
            return {}
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise HttpError(400, "JSON_INVALID", "Corps JSON invalide.") from exc

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        path = url.path
        self._body = b""
        query = {key: values[-1] for key, values in parse_qs(url.query).items()}
        try:
            self._drain_body()
            if path.startswith("/_control/"):
                if not self.server.enable_control:
                    raise HttpError(404, "NOT_FOUND", "Ressource inconnue.")
                self._control(method, path[len("/_control") :], query)
                return
            if not path.startswith("/api/v1/"):
                raise HttpError(404, "NOT_FOUND", "Ressource inconnue.")
            api_path = path[len("/api/v1") :]
            self._api(method, api_path, query)
        except HttpError as exc:
            self._send_json(exc.status, exc.body)
        except (ConnectionError, OSError):
            self.close_connection = True

    # --- the ERP's API ------------------------------------------------------------------------------

    def _api(self, method: str, api_path: str, query: dict) -> None:
        if self.headers.get("Authorization") != f"Bearer {self.server.api_key}":
            raise HttpError(401, "UNAUTHORIZED", "Clé API absente ou refusée.")
        parts = [unquote(part) for part in api_path.strip("/").split("/")]
        route = self._route_name(method, parts)
        self.server.count(route)
        fault = self.server.faults.pick(method, "/" + "/".join(api_path.strip("/").split("/")))
        after_commit = None
        if fault:
            kind = fault.get("fault")
            if kind == "latency":
                time.sleep(float(fault.get("delay", 1.0)))
            elif kind in ("timeout_after_commit", "reset_after_commit"):
                after_commit = fault
            elif self._apply_fault(fault):
                return
        status, body = self._handle(method, parts, query)
        if after_commit is not None:
            if after_commit["fault"] == "reset_after_commit":
                self._reset()
                return
            time.sleep(float(after_commit.get("delay", 30.0)))
        self._send_json(status, body)

    def _apply_fault(self, fault: dict) -> bool:
        """Answer instead of the ERP; True when the request is fully handled."""
        kind = fault.get("fault")
        if kind == "status":
            status = int(fault.get("status", 500))
            headers = {"Retry-After": fault["retry_after"]} if fault.get("retry_after") is not None else None
            self._send_json(status, {"errors": [{"code": "SERVER_ERROR", "message": "Erreur interne."}]}, headers)
            return True
        if kind == "html":
            page = b"<html><head><title>502 Bad Gateway</title></head><body><h1>Bad Gateway</h1></body></html>"
            self._send_raw(int(fault.get("status", 502)), page, "text/html")
            return True
        if kind == "malformed":
            self._send_raw(200, b'{"items": [{"code": "A1", "label": ', "application/json")
            return True
        if kind == "wrong_shape":
            self._send_json(200, {"unexpected": True})
            return True
        if kind == "oversized":
            size = int(fault.get("size", 20 * 1024 * 1024))
            filler = b'{"items": [], "padding": "' + b"x" * max(size - 30, 0) + b'"}'
            self._send_raw(200, filler, "application/json")
            return True
        if kind == "drip":
            body = b'{"items": [], "next_cursor": null}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            for byte in body:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(float(fault.get("delay", 1.0)))
            return True
        if kind == "reset":
            self._reset()
            return True
        return False

    @staticmethod
    def _route_name(method: str, parts: list[str]) -> str:
        if parts == ["health"]:
            return f"{method} health"
        if parts == ["companies"]:
            return f"{method} companies"
        if len(parts) == 3 and parts[0] == "companies":
            return f"{method} companies/{{code}}/{parts[2]}"
        if len(parts) == 4 and parts[0] == "companies" and parts[2] == "entries":
            return f"{method} companies/{{code}}/entries/{{key}}"
        return f"{method} other"

    def _handle(self, method: str, parts: list[str], query: dict) -> tuple[int, dict]:
        store = self.server.store
        if method == "GET" and parts == ["health"]:
            return 200, {"status": "ok", "version": VERSION, "time": dt.datetime.now(dt.UTC).isoformat()}
        if method == "GET" and parts == ["companies"]:
            return 200, {"items": store.companies(), "next_cursor": None}
        if len(parts) < 3 or parts[0] != "companies":
            raise HttpError(404, "NOT_FOUND", "Ressource inconnue.")
        company = store.company(parts[1])
        if company is None:
            raise HttpError(404, "COMPANY_UNKNOWN", f"La société {parts[1]} n'existe pas.")
        kind = parts[2]
        if len(parts) == 3 and method == "GET" and kind in KINDS:
            return 200, self._list(company["code"], kind, query)
        if kind == "entries":
            if len(parts) == 3 and method == "POST":
                return 200, self._post_entries(company, self._read_json())
            if len(parts) == 4 and method == "GET":
                return self._get_entry(company["code"], parts[3])
            if len(parts) == 4 and method == "PATCH":
                return self._patch_entry(company["code"], parts[3], self._read_json())
        raise HttpError(404, "NOT_FOUND", "Ressource inconnue.")

    def _list(self, company: str, kind: str, query: dict) -> dict:
        try:
            limit = int(query.get("limit", DEFAULT_LIMIT))
        except ValueError as exc:
            raise HttpError(400, "LIMIT_INVALID", "Paramètre limit invalide.") from exc
        limit = max(1, min(limit, MAX_LIMIT))
        after = None
        if query.get("cursor"):
            try:
                after = _decode_cursor(query["cursor"])
            except ValueError as exc:
                raise HttpError(400, "CURSOR_INVALID", "Curseur invalide.") from exc
        if query.get("fields") == "code":
            codes, last = self.server.store.list_codes(company, kind, after=after, limit=limit)
            return {"items": [{"code": code} for code in codes], "next_cursor": _encode_cursor(last)}
        since = None
        if query.get("modified_since"):
            try:
                since = normalise_timestamp(query["modified_since"])
            except ValueError as exc:
                raise HttpError(400, "DATE_INVALID", "Paramètre modified_since invalide.") from exc
        items, last = self.server.store.list_items(company, kind, after=after, limit=limit, modified_since=since)
        return {"items": items, "next_cursor": _encode_cursor(last)}

    def _post_entries(self, company: dict, body) -> dict:
        if not isinstance(body, dict) or not isinstance(body.get("entries"), list):
            raise HttpError(400, "BATCH_INVALID", "Le lot doit contenir une liste « entries ».")
        mode = body.get("mode", "real")
        if mode not in ("real", "simulation"):
            raise HttpError(400, "MODE_INVALID", "Le mode doit être « real » ou « simulation ».")
        if len(body["entries"]) > MAX_BATCH:
            raise HttpError(400, "BATCH_TOO_LARGE", f"Au plus {MAX_BATCH} écritures par lot.")
        store = self.server.store
        results = []
        with store.write() as db:
            for entry in body["entries"]:
                results.append(self._book(store, db, company, entry, simulate=mode == "simulation"))
        if self.server.entry_ms:
            # Outside the write lock: the ERP books the batches of different companies side by side.
            time.sleep(len(results) * self.server.entry_ms / 1000)
        return {"mode": mode, "results": results}

    def _book(self, store: Store, db, company: dict, entry, *, simulate: bool) -> dict:
        if not isinstance(entry, dict) or not entry.get("external_id"):
            return {
                "external_id": entry.get("external_id") if isinstance(entry, dict) else None,
                "status": "rejected",
                "errors": [{"code": "ENTRY_INVALID", "field": "external_id", "message": "Clé externe absente."}],
            }
        external_id = str(entry["external_id"])
        digest = payload_hash(entry)
        existing = store.entry_by_external_id(db, company["code"], external_id)
        if existing is not None:
            if existing["payload_hash"] == digest:
                return {
                    "external_id": external_id,
                    "status": "duplicate",
                    "piece_number": existing["piece_number"],
                }
            return {
                "external_id": external_id,
                "status": "rejected",
                "errors": [
                    {
                        "code": "EXTERNAL_ID_CONFLICT",
                        "field": "external_id",
                        "message": f"La clé {external_id} est déjà utilisée par une autre écriture.",
                    }
                ],
            }
        errors = validate_entry(store, db, company, entry)
        if errors:
            return {"external_id": external_id, "status": "rejected", "errors": errors}
        if simulate:
            return {"external_id": external_id, "status": "accepted", "piece_number": None, "simulated": True}
        year = str(entry["date"])[:4]
        piece = store.next_piece_number(db, company["code"], str(entry["journal"]), year)
        store.insert_entry(db, company["code"], piece, entry, digest, booked_at=dt.datetime.now(dt.UTC).isoformat())
        return {"external_id": external_id, "status": "accepted", "piece_number": piece}

    def _get_entry(self, company: str, external_id: str) -> tuple[int, dict]:
        store = self.server.store
        row = store.entry_by_external_id(store.connection(), company, external_id)
        if row is None:
            raise HttpError(404, "ENTRY_UNKNOWN", f"Aucune écriture de clé {external_id}.", "external_id")
        found = entry_row_to_dict(row)
        return 200, {
            "external_id": found["external_id"],
            "piece_number": found["piece_number"],
            "status": "booked",
            "bap": found["bap"],
            "bap_date": found["bap_date"],
            "booked_at": found["booked_at"],
        }

    def _patch_entry(self, company: str, piece: str, body) -> tuple[int, dict]:
        if not isinstance(body, dict) or not body.get("update_id"):
            raise HttpError(400, "UPDATE_INVALID", "update_id est obligatoire.", "update_id")
        if "bap" in body and not isinstance(body["bap"], bool):
            raise HttpError(400, "UPDATE_INVALID", "bap doit être vrai ou faux.", "bap")
        store = self.server.store
        with store.write() as db:
            row = store.entry_by_piece(db, company, piece)
            if row is None:
                raise HttpError(404, "ENTRY_UNKNOWN", f"La pièce {piece} n'existe pas.", "piece_number")
            seen = db.execute(
                "SELECT piece_number FROM entry_updates WHERE company = ? AND update_id = ?",
                (company, str(body["update_id"])),
            ).fetchone()
            if seen is not None:
                return 200, {"status": "duplicate", "piece_number": seen[0], "update_id": body["update_id"]}
            db.execute(
                "UPDATE entries SET bap = ?, bap_date = ? WHERE company = ? AND piece_number = ?",
                (int(bool(body.get("bap"))), body.get("bap_date"), company, piece),
            )
            db.execute(
                "INSERT INTO entry_updates (company, update_id, piece_number, payload, applied_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (
                    company,
                    str(body["update_id"]),
                    piece,
                    json.dumps(body),
                    dt.datetime.now(dt.UTC).isoformat(),
                ),
            )
        return 200, {"status": "applied", "piece_number": piece, "update_id": body["update_id"]}

    # --- test-only control surface ------------------------------------------------------------------

    def _control(self, method: str, path: str, query: dict) -> None:
        store = self.server.store
        if method == "POST" and path == "/reset":
            store.load_demo()
            self.server.faults.set([])
            with self.server.stats_lock:
                self.server.stats.clear()
            self._send_json(200, {"status": "reset"})
        elif method == "POST" and path == "/faults":
            body = self._read_json()
            self.server.faults.set(body.get("rules", []), int(body.get("seed", 0)))
            self._send_json(200, {"rules": len(self.server.faults.rules)})
        elif method == "DELETE" and path == "/faults":
            self.server.faults.set([])
            self._send_json(200, {"rules": 0})
        elif method == "GET" and path == "/stats":
            with self.server.stats_lock:
                self._send_json(200, dict(self.server.stats))
        elif method == "GET" and path == "/entries":
            self._send_json(200, {"items": store.all_entries(query.get("company"))})
        elif method == "POST" and path == "/companies":
            body = self._read_json()
            record = {
                "code": body["code"],
                "name": body.get("name", body["code"]),
                "siren": body.get("siren", demo.siren_from(len(body["code"]) * 104729)),
                "currency": body.get("currency", "EUR"),
                "closed_until": body.get("closed_until", demo.CLOSED_UNTIL),
                "analytic_required": bool(body.get("analytic_required", False)),
            }
            store.add_company(record)
            self._send_json(200, record)
        elif method == "POST" and path == "/referential":
            body = self._read_json()
            now = dt.datetime.now(dt.UTC).isoformat()
            upserts = []
            for item in body.get("upsert", []):
                merged = store.item(body["company"], body["kind"], str(item.get("code"))) or {}
                merged.update(item)
                merged.setdefault("modified_at", now)
                if "modified_at" not in item:
                    merged["modified_at"] = now
                upserts.append(merged)
            if upserts:
                store.upsert_items(body["company"], body["kind"], upserts)
            if body.get("raw"):
                store.upsert_items(body["company"], body["kind"], body["raw"])
            if body.get("delete"):
                store.delete_items(body["company"], body["kind"], body["delete"])
            self._send_json(200, {"upserted": len(upserts), "deleted": len(body.get("delete", []))})
        elif method == "POST" and path == "/generate":
            body = self._read_json()
            company = body.get("company", "BENCH")
            generate(
                store,
                company,
                suppliers=int(body.get("suppliers") or 0),
                accounts=int(body.get("accounts") or 0),
                name=body.get("name"),
            )
            self._send_json(200, {"company": company})
        else:
            raise HttpError(404, "NOT_FOUND", "Commande de contrôle inconnue.")


def generate(store: Store, company: str, *, suppliers: int = 0, accounts: int = 0, name: str | None = None) -> None:
    """A large referential for benchmarks: the company (with the demo referential) if new, plus generated items."""
    if store.company(company) is None:
        store.add_company(
            {
                "code": company,
                "name": name or company,
                "siren": demo.siren_from(990_000_01),
                "currency": "EUR",
                "closed_until": demo.CLOSED_UNTIL,
                "analytic_required": False,
            }
        )
        for kind, items in demo.referential_for(demo.DemoCompany(company, company)).items():
            store.upsert_items(company, kind, items)
    if suppliers:
        store.upsert_items(company, "suppliers", demo.generated_suppliers(suppliers))
    if accounts:
        store.upsert_items(company, "accounts", demo.generated_accounts(accounts))


def make_server(
    host: str,
    port: int,
    db_path: str,
    api_key: str,
    *,
    enable_control: bool = False,
    verbose: bool = False,
    entry_ms: float = 0.0,
) -> StubServer:
    return StubServer((host, port), Store(db_path), api_key, enable_control, verbose, entry_ms)
