"""The stub speaks the contract of DESIGN.md over real HTTP."""

from __future__ import annotations

import pytest


def test_it_requires_the_bearer_key(sage):
    assert sage.http.get(f"{sage.url}/api/v1/health", timeout=5).status_code == 401
    wrong = sage.http.get(f"{sage.url}/api/v1/health", headers={"Authorization": "Bearer nope"}, timeout=5)
    assert wrong.status_code == 401
    assert sage.get("/health").json()["status"] == "ok"


def test_it_serves_the_ten_companies_of_the_manual(sage):
    codes = {item["code"] for item in sage.get("/companies").json()["items"]}
    assert codes == {"AKAO", "avirer", "JNO", "MULTI", "S4", "SA AKAO", "Société 1", "SJNO", "S1", "S2"}


def test_it_paginates_with_a_cursor(sage):
    first = sage.get("/companies/JNO/suppliers", params={"limit": 20}).json()
    assert len(first["items"]) == 20 and first["next_cursor"]
    codes = [item["code"] for item in first["items"]]
    cursor = first["next_cursor"]
    while cursor:
        page = sage.get("/companies/JNO/suppliers", params={"limit": 20, "cursor": cursor}).json()
        codes += [item["code"] for item in page["items"]]
        cursor = page["next_cursor"]
    assert codes == sorted(set(codes))
    assert 42 <= len(codes) <= 60


def test_it_filters_by_modified_since(sage):
    sage.mutate(
        "JNO",
        "suppliers",
        upsert=[{"code": "F0001", "label": "Renommé", "modified_at": "2026-06-01T10:00:00Z"}],
    )
    changed = sage.get("/companies/JNO/suppliers", params={"modified_since": "2026-05-01T00:00:00+02:00"}).json()
    assert [item["code"] for item in changed["items"]] == ["F0001"]


def test_it_addresses_companies_with_spaces_and_accents(sage):
    response = sage.get("/companies/Soci%C3%A9t%C3%A9%201/journals")
    assert {item["code"] for item in response.json()["items"]} == {"ACH", "BQ", "OD"}


def test_it_answers_404_for_an_unknown_company(sage):
    response = sage.get("/companies/NOPE/accounts")
    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] == "COMPANY_UNKNOWN"


def test_demo_dataset_has_realistic_french_referential(sage):
    accounts = {item["code"]: item for item in sage.get("/companies/S1/accounts").json()["items"]}
    assert "401000" in accounts and "445660" in accounts
    assert any(code.startswith("60") for code in accounts) and any(code.startswith("62") for code in accounts)
    assert accounts["606800"]["active"] is False
    tax = {
        item["code"]: (item["rate"], item["vat_category"], item["deductible_account"], item["collected_account"])
        for item in sage.get("/companies/S1/tax-codes").json()["items"]
    }
    assert tax == {
        "T20": ("20.00", "S", "445660", ""), "T10": ("10.00", "S", "445660", ""), "T55": ("5.50", "S", "445660", ""),
        "T21": ("2.10", "S", "445660", ""), "EXO": ("0.00", "E", "", ""), "HC": ("0.00", "O", "", ""),
        # Self-assessed: the VAT is booked as deductible and as due.
        "AL20": ("20.00", "AE", "445660", "445710"), "AI20": ("20.00", "K", "445662", "445200"),
    }  # fmt: skip
    modes = {item["code"] for item in sage.get("/companies/S1/payment-modes").json()["items"]}
    assert modes == {"VIR", "CHQ", "PRLV", "LCR"}
    suppliers = sage.get("/companies/S1/suppliers", params={"limit": 100}).json()["items"]
    blocked = [item["code"] for item in suppliers if item["blocked"]]
    assert blocked == ["F0042"]
    for supplier in suppliers:
        assert _luhn_valid(supplier["siren"])
        assert supplier["vat_number"] == f"FR{(12 + 3 * (int(supplier['siren']) % 97)) % 97:02d}{supplier['siren']}"


def _luhn_valid(number: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(number)):
        value = int(char) * (2 if index % 2 else 1)
        total += value - 9 if value > 9 else value
    return len(number) == 9 and total % 10 == 0


def _entry(external_id: str, **overrides) -> dict:
    entry = {
        "external_id": external_id,
        "journal": "ACH",
        "date": "2026-10-15",
        "due_date": "2026-11-15",
        "piece_reference": f"REF-{external_id}",
        "label": "Facture test",
        "payment_mode": "VIR",
        "lines": [
            {
                "account": "401000",
                "supplier": "F0001",
                "label": "Facture test",
                "debit": "0.00",
                "credit": "120.00",
            },
            {
                "account": "606400",
                "label": "Fournitures",
                "debit": "100.00",
                "credit": "0.00",
                "tax_code": "T20",
            },
            {"account": "445660", "label": "TVA 20 %", "debit": "20.00", "credit": "0.00", "tax_code": "T20"},
        ],
    }
    entry.update(overrides)
    return entry


def test_it_books_once_per_external_id(sage):
    entry = _entry("k1")
    first = sage.post("/companies/JNO/entries", {"entries": [entry]}).json()["results"][0]
    again = sage.post("/companies/JNO/entries", {"entries": [entry]}).json()["results"][0]
    assert first["status"] == "accepted" and first["piece_number"].startswith("ACH2026")
    assert again == {"external_id": "k1", "status": "duplicate", "piece_number": first["piece_number"]}
    assert len([e for e in sage.entries("JNO") if e["external_id"] == "k1"]) == 1
    found = sage.get("/companies/JNO/entries/k1").json()
    assert found["piece_number"] == first["piece_number"]


def test_simulation_books_nothing(sage):
    result = sage.post("/companies/JNO/entries", {"mode": "simulation", "entries": [_entry("sim")]}).json()
    assert result["results"][0]["status"] == "accepted"
    assert sage.get("/companies/JNO/entries/sim").status_code == 404


def _lines_with(**changes):
    lines = _entry("x")["lines"]
    for index, change in changes.items():
        lines[int(index[1:])] = lines[int(index[1:])] | change
    return lines


@pytest.mark.parametrize(
    ("code", "company", "overrides"),
    [
        ("JOURNAL_UNKNOWN", "JNO", {"journal": "XXX"}),
        ("JOURNAL_INACTIVE", "S4", {"journal": "OD"}),
        ("ACCOUNT_UNKNOWN", "JNO", {"lines": _lines_with(l1={"account": "699999"})}),
        ("ACCOUNT_INACTIVE", "JNO", {"lines": _lines_with(l1={"account": "606800"})}),
        ("SUPPLIER_UNKNOWN", "JNO", {"lines": _lines_with(l0={"supplier": "F9999"})}),
        ("SUPPLIER_BLOCKED", "JNO", {"lines": _lines_with(l0={"supplier": "F0042"})}),
        ("TAX_CODE_UNKNOWN", "JNO", {"lines": _lines_with(l1={"tax_code": "T99"})}),
        ("ANALYTIC_REQUIRED", "MULTI", {}),
        (
            "ANALYTIC_SECTION_UNKNOWN",
            "JNO",
            {"lines": _lines_with(l1={"analytic": [{"axis": "CC", "section": "ZZZ", "amount": "100.00"}]})},
        ),
        ("UNBALANCED", "JNO", {"lines": _lines_with(l1={"debit": "90.00"})}),
        ("AMOUNT_INVALID", "JNO", {"lines": _lines_with(l1={"debit": "100.5"})}),
        ("PERIOD_CLOSED", "JNO", {"date": "2026-03-15", "due_date": "2026-04-15"}),
        (
            "DUPLICATE_INVOICE",
            "JNO",
            {"piece_reference": "FA-2026-0117", "lines": _lines_with(l0={"supplier": "F0003"})},
        ),
        ("LABEL_TOO_LONG", "JNO", {"label": "x" * 61}),
        ("DUE_DATE_BEFORE_DATE", "JNO", {"due_date": "2026-10-01"}),
    ],
)
def test_it_rejects_like_the_erp(sage, code, company, overrides):
    result = sage.post(f"/companies/{company}/entries", {"entries": [_entry("r1", **overrides)]}).json()["results"][0]
    assert result["status"] == "rejected"
    assert code in {error["code"] for error in result["errors"]}
    assert all(error["message"] for error in result["errors"])


def test_it_rejects_the_same_key_with_another_payload(sage):
    sage.post("/companies/JNO/entries", {"entries": [_entry("c1")]})
    result = sage.post("/companies/JNO/entries", {"entries": [_entry("c1", label="Autre")]}).json()["results"][0]
    assert result["errors"][0]["code"] == "EXTERNAL_ID_CONFLICT"


def test_it_answers_entry_unknown(sage):
    response = sage.get("/companies/JNO/entries/never-sent")
    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] == "ENTRY_UNKNOWN"


def test_it_applies_an_update_once(sage):
    piece = sage.post("/companies/JNO/entries", {"entries": [_entry("u1")]}).json()["results"][0]["piece_number"]
    update = {"update_id": "u1-bap1", "bap": True, "bap_date": "2026-11-20"}
    url = f"{sage.url}/api/v1/companies/JNO/entries/{piece}"
    first = sage.http.patch(url, json=update, headers=sage.auth, timeout=5).json()
    again = sage.http.patch(url, json=update, headers=sage.auth, timeout=5).json()
    assert (first["status"], again["status"]) == ("applied", "duplicate")
    assert sage.get("/companies/JNO/entries/u1").json()["bap"] is True
    unknown = sage.http.patch(
        f"{sage.url}/api/v1/companies/JNO/entries/ACH2026999999", json=update, headers=sage.auth, timeout=5
    )
    assert unknown.status_code == 404


def test_control_surface_is_off_unless_enabled(tmp_path):
    from tests.support.stub import StubProcess

    stub = StubProcess(tmp_path / "closed.sqlite3", enable_control=False)
    stub.start()
    try:
        assert stub.http.post(f"{stub.url}/_control/reset", timeout=5).status_code == 404
    finally:
        stub.stop()


def test_it_generates_a_large_referential_from_the_command_line(tmp_path):
    from tests.support.stub import StubProcess

    stub = StubProcess(tmp_path / "large.sqlite3")
    stub.extra_args = ["--generate-company", "BIG", "--suppliers", "3000", "--accounts", "200"]
    stub.start()
    try:
        codes = set()
        cursor = None
        while True:
            page = stub.get("/companies/BIG/suppliers", params={"limit": 5000} | ({"cursor": cursor} if cursor else {}))
            body = page.json()
            codes |= {item["code"] for item in body["items"]}
            cursor = body["next_cursor"]
            if not cursor:
                break
        assert len([code for code in codes if code.startswith("G")]) == 3000
    finally:
        stub.stop()
