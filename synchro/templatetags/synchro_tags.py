from django import template

from invoices.models import ExportState

register = template.Library()

CSS = {
    ExportState.TO_EXPORT: "text-bg-secondary",
    ExportState.SENDING: "text-bg-info",
    ExportState.DONE: "text-bg-success",
    ExportState.REJECTED: "text-bg-danger",
    ExportState.UNKNOWN: "text-bg-warning",
}


@register.inclusion_tag("synchro/_state_badge.html")
def sync_state(value: str):
    return {"label": ExportState(value).label if value in ExportState.values else value, "css": CSS.get(value, "")}


@register.filter
def duration(run) -> str:
    if not run.finished_at:
        return ""
    seconds = int((run.finished_at - run.started_at).total_seconds())
    if seconds < 60:
        return f"{seconds} s"
    return f"{seconds // 60} min {seconds % 60:02d} s"
