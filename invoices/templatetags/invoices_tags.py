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
    return {"label": invoice.get_status_display(), "css": STATUS_CLASSES.get(invoice.status, "text-bg-secondary")}


@register.filter
def euros(value) -> str:
    """1234.5 → « 1 234,50 € » (French grouping with a narrow no-break space)."""
    if value is None or value == "":
        return ""
    number = f"{value:,.2f}".replace(",", "\u202f").replace(".", ",")
    return f"{number}\u00a0€"
