"""Large volumes of invoices in one statement each (``INSERT … SELECT generate_series``), shaped like the services'.

Every invoice is validated and balanced: three lines on expense accounts at 20 % VAT, the stated VAT the rounded
VAT of the base, a supplier of the company's referential, a date after the closed period.
"""

from __future__ import annotations

from .support import sql

# What the stub's demo referential holds in every company (demo.py): active expense accounts, the 20 % tax code,
# suppliers F0001…F0040 (F0042 is the blocked one).
EXPENSE_ACCOUNTS = ("606400", "602200", "615000")
TAX_CODE = "T20"
SUPPLIERS = tuple(f"F{index:04d}" for index in range(1, 41))


def _ids(table: str, company_id: int, codes: tuple[str, ...]) -> list[int]:
    found = sql(f'SELECT code, id FROM "{table}" WHERE company_id = %s AND code = ANY(%s)', [company_id, list(codes)])
    rows = dict(found)
    missing = [code for code in codes if code not in rows]
    if missing:
        raise RuntimeError(f"{table}: {missing} missing for company {company_id}")
    return [rows[code] for code in codes]


def create_invoices(
    company_id: int,
    count: int,
    *,
    prefix: str,
    lines: int = 3,
    export_state_sql: str = "'to_export'",
    update_state_sql: str = "''",
    status_sql: str = "'validated'",
    start_date: str = "2026-04-01",
    days: int = 240,
) -> None:
    """``count`` invoices of ``company_id`` numbered ``<prefix>-<i>``; the ``*_sql`` expressions may use ``i``
    (1…count) to spread states. Lines only when ``lines`` > 0."""
    suppliers = _ids("companies_supplier", company_id, SUPPLIERS)
    accounts = _ids("companies_account", company_id, EXPENSE_ACCOUNTS)
    (tax,) = _ids("companies_taxcode", company_id, (TAX_CODE,))
    # Line k of invoice i is worth 40 + (i * 7 + k * 13) % 9000 / 100 euros: cents, and no two totals alike.
    line_amount = "(40 + ((i * 7 + k * 13) %% 9000) / 100.0)::numeric(14, 2)"
    total_ht = f"(SELECT SUM({line_amount}) FROM generate_series(1, {max(lines, 1)}) k)"
    sql(
        f"""
        INSERT INTO invoices_invoice (
            company_id, supplier_id, kind, number, invoice_date, due_date, currency, total_ht, total_tva, total_ttc,
            label, payment_mode, status, incomplete_reason, source_file, source_hash, source_format, bap, bap_date,
            bap_by_id, bap_version, bap_pushed_version, accounting_version, integrated_version, sage_piece_number,
            integrated_at, export_state, update_state, last_attempt_at, created_at, updated_at
        )
        SELECT %(company)s, (%(suppliers)s::bigint[])[1 + i %% %(supplier_count)s], 'invoice',
               %(prefix)s || '-' || lpad(i::text, 7, '0'), %(start)s::date + (i %% %(days)s), NULL, 'EUR',
               ht, round(ht * 0.2, 2), ht + round(ht * 0.2, 2),
               '', '', {status_sql}, '', '', '', '', false, NULL,
               NULL, 0, 0, 1, NULL, CASE WHEN {export_state_sql} = 'done' THEN 'ACH2026' || lpad(i::text, 6, '0')
               ELSE '' END,
               NULL, {export_state_sql}, {update_state_sql}, NULL, now(), now()
        FROM generate_series(1, %(count)s) i, LATERAL (SELECT {total_ht} AS ht) totals
        """,
        {
            "company": company_id,
            "suppliers": suppliers,
            "supplier_count": len(suppliers),
            "prefix": prefix,
            "start": start_date,
            "days": days,
            "count": count,
        },
    )
    if lines:
        sql(
            f"""
            INSERT INTO invoices_invoiceline (invoice_id, position, label, amount_ht, account_id, tax_code_id,
                                              analytic_section_id)
            SELECT invoice.id, k, 'Ligne ' || k, {line_amount}, (%(accounts)s::bigint[])[k], %(tax)s, NULL
            FROM (SELECT id, substring(number FROM '[0-9]+$')::int AS i FROM invoices_invoice
                  WHERE company_id = %(company)s AND number LIKE %(like)s) invoice,
                 generate_series(1, %(lines)s) k
            """,
            {
                "company": company_id,
                "accounts": accounts * (lines // len(accounts) + 1),
                "tax": tax,
                "like": f"{prefix}-%",
                "lines": lines,
            },
        )
