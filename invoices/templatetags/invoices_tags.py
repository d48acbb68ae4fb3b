from django import template

register = template.Library()

STATUS_CLASSES = {
    "to_complete": "text-bg-warning",
    "to_validate": "text-bg-info",
    "validated": "text-bg-primary",
    "integrated": "text-bg-success",
}


@register.inclusion_tag("invoices/_status_badge.html")
def invoice_status(invoice):
    reading = invoice.get_scan_state_display() if invoice.scan_state == "reading" else ""
    return {
        "label": invoice.get_status_display(),
        "css": STATUS_CLASSES.get(invoice.status, "text-bg-secondary"),
        "reading": reading,
    }


@register.inclusion_tag("invoices/_scan_badge.html")
def scan_badge(invoice, name):
    """What the reading of a paper invoice says of one field of its form: read surely, « à vérifier », or only
    suggested (a supplier found without a high confidence, a value read too unsure to be pre-filled)."""
    facts = ((invoice.scan or {}).get("fields") or {}).get(name)
    if not facts:
        return {"facts": None}
    return {"facts": facts, "name": name, "sure": facts.get("level") == "high" and facts.get("prefilled")}


@register.filter
def euros(value) -> str:
    """1234.5 → « 1 234,50 € » (French grouping with a narrow no-break space)."""
    if value is None or value == "":
        return ""
    number = f"{value:,.2f}".replace(",", "\u202f").replace(".", ",")
    return f"{number}\u00a0€"
