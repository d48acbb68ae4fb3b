"""The stub's persistent store: one SQLite file, safe for the threads of the HTTP server.

Reads use one connection per thread; every write goes through ``Store.write()``, which serialises writers
with a lock so that "look the key up, then book" is atomic, as in the real ERP.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import sqlite3
import threading
from collections.abc import Iterator

from . import demo

KINDS = ("accounts", "suppliers", "journals", "tax-codes", "analytic-sections", "payment-modes")

SCHEMA = """
CREATE TABLE IF NOT EXISTS companies (
    code TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    siren TEXT NOT NULL,
    currency TEXT NOT NULL,
    closed_until TEXT,
    analytic_required INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS referential (
    company TEXT NOT NULL,
    kind TEXT NOT NULL,
    code TEXT NOT NULL,
    modified_at TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (company, kind, code)
);
CREATE INDEX IF NOT EXISTS referential_modified ON referential (company, kind, modified_at);
CREATE TABLE IF NOT EXISTS entries (
    company TEXT NOT NULL,
    piece_number TEXT NOT NULL,
    external_id TEXT NOT NULL,
    payload_hash TEXT NOT NULL,
    supplier TEXT,
    piece_reference TEXT,
    payload TEXT NOT NULL,
    bap INTEGER,
    bap_date TEXT,
    booked_at TEXT NOT NULL,
    PRIMARY KEY (company, piece_number),
    UNIQUE (company, external_id)
);
CREATE INDEX IF NOT EXISTS entries_supplier_ref ON entries (company, supplier, piece_reference);
CREATE TABLE IF NOT EXISTS entry_updates (
    company TEXT NOT NULL,
    update_id TEXT NOT NULL,
    piece_number TEXT NOT NULL,
    payload TEXT NOT NULL,
    applied_at TEXT NOT NULL,
    PRIMARY KEY (company, update_id)
);
CREATE TABLE IF NOT EXISTS counters (
    company TEXT NOT NULL,
    journal TEXT NOT NULL,
    year TEXT NOT NULL,
    value INTEGER NOT NULL,
    PRIMARY KEY (company, journal, year)
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def normalise_timestamp(value: str) -> str:
    """An ISO 8601 timestamp in UTC with a fixed format, so that stored ones compare as strings."""
    parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


def _sortable_modified(item: dict) -> str:
    try:
        return normalise_timestamp(str(item.get("modified_at", "")))
    except ValueError:
        # A malformed item (injected by a test) is stored as is: the client must report it.
        return str(item.get("modified_at", ""))


class Store:
    def __init__(self, path: str):
        self.path = path
        self._local = threading.local()
        self._write_lock = threading.RLock()
        with self._write_lock:
            db = self.connection()
            db.executescript(SCHEMA)
            seeded = db.execute("SELECT value FROM meta WHERE key = 'seeded'").fetchone()
        if not seeded:
            self.load_demo()

    def connection(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            self._local.db = db
        return db

    @contextlib.contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        with self._write_lock:
            db = self.connection()
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    # --- demo dataset -------------------------------------------------------------------------------

    def load_demo(self) -> None:
        with self.write() as db:
            for table in ("companies", "referential", "entries", "entry_updates", "counters", "meta"):
                db.execute(f"DELETE FROM {table}")
            for company in demo.COMPANIES:
                record = demo.company_record(company)
                self._insert_company(db, record)
                for kind, items in demo.referential_for(company).items():
                    self._upsert_items(db, company.code, kind, items)
                for booked in company.prebooked:
                    self._book_prebooked(db, company.code, booked)
            db.execute("INSERT INTO meta (key, value) VALUES ('seeded', '1')")

    def _insert_company(self, db: sqlite3.Connection, record: dict) -> None:
        db.execute(
            "INSERT OR REPLACE INTO companies (code, name, siren, currency, closed_until, analytic_required)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (
                record["code"],
                record["name"],
                record["siren"],
                record["currency"],
                record["closed_until"],
                int(record["analytic_required"]),
            ),
        )

    def _book_prebooked(self, db: sqlite3.Connection, company: str, booked: dict) -> None:
        payload = {
            "external_id": booked["external_id"],
            "journal": "ACH",
            "date": booked["date"],
            "piece_reference": booked["piece_reference"],
            "label": f"Facture {booked['piece_reference']}",
            "lines": [
                {
                    "account": "401000",
                    "supplier": booked["supplier"],
                    "debit": "0.00",
                    "credit": booked["amount"],
                },
                {"account": "606400", "debit": booked["amount"], "credit": "0.00"},
            ],
        }
        piece = self.next_piece_number(db, company, "ACH", booked["date"][:4])
        self.insert_entry(db, company, piece, payload, "prebooked", booked_at=booked["date"] + "T09:00:00+00:00")

    # --- companies and referential ------------------------------------------------------------------

    def companies(self) -> list[dict]:
        rows = self.connection().execute("SELECT * FROM companies ORDER BY code").fetchall()
        return [
            {
                "code": row["code"],
                "name": row["name"],
                "siren": row["siren"],
                "currency": row["currency"],
                "closed_until": row["closed_until"],
                "analytic_required": bool(row["analytic_required"]),
            }
            for row in rows
        ]

    def company(self, code: str) -> dict | None:
        return next((c for c in self.companies() if c["code"] == code), None)

    def add_company(self, record: dict) -> None:
        with self.write() as db:
            self._insert_company(db, record)

    def list_items(
        self, company: str, kind: str, *, after: str | None, limit: int, modified_since: str | None
    ) -> tuple[list[dict], str | None]:
        sql = "SELECT code, data FROM referential WHERE company = ? AND kind = ?"
        params: list = [company, kind]
        if after is not None:
            sql += " AND code > ?"
            params.append(after)
        if modified_since is not None:
            sql += " AND modified_at > ?"
            params.append(modified_since)
        sql += " ORDER BY code LIMIT ?"
        params.append(limit + 1)
        rows = self.connection().execute(sql, params).fetchall()
        has_more = len(rows) > limit
        rows = rows[:limit]
        items = [json.loads(row["data"]) for row in rows]
        return items, (rows[-1]["code"] if has_more else None)

    def list_codes(self, company: str, kind: str, *, after: str | None, limit: int) -> tuple[list[str], str | None]:
        sql = "SELECT code FROM referential WHERE company = ? AND kind = ?"
        params: list = [company, kind]
        if after is not None:
            sql += " AND code > ?"
            params.append(after)
        sql += " ORDER BY code LIMIT ?"
        params.append(limit + 1)
        codes = [row[0] for row in self.connection().execute(sql, params).fetchall()]
        has_more = len(codes) > limit
        codes = codes[:limit]
        return codes, (codes[-1] if has_more else None)

    def item(self, company: str, kind: str, code: str) -> dict | None:
        row = (
            self.connection()
            .execute(
                "SELECT data FROM referential WHERE company = ? AND kind = ? AND code = ?",
                (company, kind, code),
            )
            .fetchone()
        )
        return json.loads(row[0]) if row else None

    def upsert_items(self, company: str, kind: str, items: list[dict]) -> None:
        with self.write() as db:
            self._upsert_items(db, company, kind, items)

    def _upsert_items(self, db: sqlite3.Connection, company: str, kind: str, items: list[dict]) -> None:
        db.executemany(
            "INSERT OR REPLACE INTO referential (company, kind, code, modified_at, data) VALUES (?, ?, ?, ?, ?)",
            [(company, kind, str(item.get("code")), _sortable_modified(item), json.dumps(item)) for item in items],
        )

    def delete_items(self, company: str, kind: str, codes: list[str]) -> None:
        with self.write() as db:
            db.executemany(
                "DELETE FROM referential WHERE company = ? AND kind = ? AND code = ?",
                [(company, kind, code) for code in codes],
            )

    # --- entries ------------------------------------------------------------------------------------

    def next_piece_number(self, db: sqlite3.Connection, company: str, journal: str, year: str) -> str:
        row = db.execute(
            "SELECT value FROM counters WHERE company = ? AND journal = ? AND year = ?",
            (company, journal, year),
        ).fetchone()
        value = (row[0] if row else 0) + 1
        db.execute(
            "INSERT OR REPLACE INTO counters (company, journal, year, value) VALUES (?, ?, ?, ?)",
            (company, journal, year, value),
        )
        return f"{journal}{year}{value:06d}"

    def insert_entry(
        self,
        db: sqlite3.Connection,
        company: str,
        piece: str,
        payload: dict,
        payload_hash: str,
        *,
        booked_at: str,
    ) -> None:
        supplier = next((ln.get("supplier") for ln in payload["lines"] if ln.get("supplier")), None)
        db.execute(
            "INSERT INTO entries (company, piece_number, external_id, payload_hash, supplier,"
            " piece_reference, payload, bap, bap_date, booked_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                company,
                piece,
                payload["external_id"],
                payload_hash,
                supplier,
                payload.get("piece_reference"),
                json.dumps(payload),
                None if payload.get("bap") is None else int(bool(payload.get("bap"))),
                payload.get("bap_date"),
                booked_at,
            ),
        )

    def entry_by_external_id(self, db: sqlite3.Connection, company: str, external_id: str) -> sqlite3.Row | None:
        return db.execute(
            "SELECT * FROM entries WHERE company = ? AND external_id = ?", (company, external_id)
        ).fetchone()

    def entry_by_piece(self, db: sqlite3.Connection, company: str, piece: str) -> sqlite3.Row | None:
        return db.execute("SELECT * FROM entries WHERE company = ? AND piece_number = ?", (company, piece)).fetchone()

    def booked_for_reference(
        self, db: sqlite3.Connection, company: str, supplier: str, reference: str
    ) -> sqlite3.Row | None:
        return db.execute(
            "SELECT * FROM entries WHERE company = ? AND supplier = ? AND piece_reference = ?",
            (company, supplier, reference),
        ).fetchone()

    def all_entries(self, company: str | None = None) -> list[dict]:
        sql = "SELECT * FROM entries"
        params: tuple = ()
        if company:
            sql += " WHERE company = ?"
            params = (company,)
        sql += " ORDER BY company, piece_number"
        return [entry_row_to_dict(row) for row in self.connection().execute(sql, params).fetchall()]


def entry_row_to_dict(row: sqlite3.Row) -> dict:
    return {
        "company": row["company"],
        "piece_number": row["piece_number"],
        "external_id": row["external_id"],
        "supplier": row["supplier"],
        "piece_reference": row["piece_reference"],
        "bap": None if row["bap"] is None else bool(row["bap"]),
        "bap_date": row["bap_date"],
        "booked_at": row["booked_at"],
        "entry": json.loads(row["payload"]),
    }
