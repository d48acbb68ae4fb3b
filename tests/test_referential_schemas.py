"""The fast path of ``clean_item`` (well-formed items in one pass) against the field-by-field checks: the same item
for every raw item it accepts, and for every other the field-by-field path's own result or error."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.sage_frp1000 import schemas
from connectors.sage_frp1000.schemas import ItemError, clean_item


def _slow(kind: str, raw):
    try:
        return schemas._common(raw) | schemas._EXTRA[kind](raw)
    except ItemError as error:
        return ("error", str(error))


def _fast(kind: str, raw):
    try:
        return clean_item(kind, raw)
    except ItemError as error:
        return ("error", str(error))


_texts = st.one_of(
    st.none(),
    st.just(""),
    st.just("  "),
    st.sampled_from(["401000", "ACME", " 123456789 ", "fr 12 345", "Lyon", "a" * 41, "b" * 256, "x\ty", " z\n", "é"]),
    st.text(max_size=12),
    st.integers(-2, 400),
    st.booleans(),
)
_values = {
    "code": _texts,
    "label": _texts,
    "active": st.one_of(st.booleans(), st.none(), st.just(1), st.just("true")),
    "modified_at": st.one_of(
        st.sampled_from(["2026-01-02T03:04:05Z", "2026-01-02T03:04:05+02:00", "2026-01-02T03:04:05", "hier", ""]),
        st.none(),
        st.integers(),
    ),
    "siren": st.one_of(_texts, st.sampled_from(["123456789", "12345678X", "1234567890", "12345678²", "١٢٣٤٥٦٧٨٩"])),
    "vat_number": _texts,
    "city": _texts,
    "collective_account": _texts,
    "payment_mode": _texts,
    "default_expense_account": _texts,
    "blocked": st.one_of(st.booleans(), st.none(), st.just(0)),
    "payment_terms_days": st.one_of(st.integers(-5, 400), st.none(), st.booleans(), st.just("30"), st.just(30.0)),
    "nature": _texts,
    "type": _texts,
    "axis": _texts,
}


@settings(max_examples=400, deadline=None)
@given(
    kind=st.sampled_from(["accounts", "suppliers", "journals", "analytic-sections", "payment-modes"]),
    raw=st.fixed_dictionaries({}, optional=_values),
)
def test_the_fast_path_cleans_as_the_field_by_field_checks(kind, raw):
    assert _fast(kind, raw) == _slow(kind, raw)


@settings(max_examples=200, deadline=None)
@given(
    raw=st.fixed_dictionaries(
        {
            "code": st.text(alphabet="ABC0123 \t", min_size=1, max_size=8),
            "label": st.text(max_size=10),
            "active": st.booleans(),
            "modified_at": st.just("2026-01-02T03:04:05Z"),
        },
        optional={name: _values[name] for name in ("siren", "vat_number", "city", "blocked", "payment_terms_days")},
    )
)
def test_well_formed_suppliers_take_the_fast_path_with_the_same_result(raw):
    assert _fast("suppliers", raw) == _slow("suppliers", raw)


def test_a_well_formed_supplier_is_cleaned_without_the_field_by_field_checks():
    raw = {"code": " F1 ", "label": "ACME", "active": True, "modified_at": "2026-01-02T03:04:05Z", "vat_number": "fr 1"}
    fast = schemas._clean_fast("suppliers", raw)
    assert fast == _slow("suppliers", raw)
    assert fast["code"] == "F1" and fast["vat_number"] == "FR1" and fast["payment_terms_days"] == 30


def test_a_code_of_spaces_only_or_a_siren_of_other_digits_is_reported_not_stored():
    base = {"label": "ACME", "active": True, "modified_at": "2026-01-02T03:04:05Z"}
    for kind in ("accounts", "suppliers", "journals", "payment-modes"):
        for code in ("   ", "\u00a0"):
            assert _fast(kind, base | {"code": code}) == ("error", "champ « code » manquant"), (kind, code)
    for siren in ("12345678²", "١٢٣٤٥٦٧٨٩"):
        assert _fast("suppliers", base | {"code": "F1", "siren": siren}) == ("error", f"SIREN invalide : {siren!r}")
    assert _fast("suppliers", base | {"code": " F1 ", "siren": "123456789"})["code"] == "F1"
