from django import template
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from invoices.models import ExportState

from ..models import SyncRun, SyncRunCompany

register = template.Library()

CSS = {
    ExportState.TO_EXPORT: "text-bg-secondary",
    ExportState.SENDING: "text-bg-info",
    ExportState.INTEGRATED: "text-bg-success",
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


def _joined(*words: str) -> str:
    return ", ".join(word for word in words if word)


def _referential_in_words(totals: dict[str, int]) -> str:
    created, updated, deactivated = totals["created"], totals["updated"], totals["deactivated"]
    changes = _joined(
        ngettext("%(n)d élément créé", "%(n)d éléments créés", created) % {"n": created} if created else "",
        ngettext("%(n)d mis à jour", "%(n)d mis à jour", updated) % {"n": updated} if updated else "",
        ngettext("%(n)d désactivé", "%(n)d désactivés", deactivated) % {"n": deactivated} if deactivated else "",
    )
    return _("référentiel : %(changes)s") % {"changes": changes} if changes else _("référentiel inchangé")


@register.filter
def counts_in_words(line: SyncRunCompany, run: SyncRun) -> list[str]:
    """What one company's line of a run did, kind by kind, in words whose plurals agree: the referential's items,
    the entries (*créations*), the updates (the BAP), what is to check, and the entries left in anomaly. A count of
    zero is not said (« 3 mises à jour envoyées », not « 0 intégrée(s) » beside them)."""
    parts = [_referential_in_words(line.referential_totals)] if line.pull_counts else []
    integrated, rejected, updated, update_rejected = line.integrated, line.rejected, line.updated, line.update_rejected
    if run.is_simulation:
        parts.append(
            _joined(
                ngettext("%(n)d écriture passerait", "%(n)d écritures passeraient", integrated) % {"n": integrated}
                if integrated
                else "",
                ngettext("%(n)d serait refusée", "%(n)d seraient refusées", rejected) % {"n": rejected}
                if rejected
                else "",
            )
            or _("aucune écriture à simuler")
        )
        return parts
    if integrated:
        parts.append(
            _joined(
                ngettext("%(n)d écriture intégrée", "%(n)d écritures intégrées", integrated) % {"n": integrated},
                ngettext("%(n)d refusée", "%(n)d refusées", rejected) % {"n": rejected} if rejected else "",
            )
        )
    elif rejected:
        parts.append(ngettext("%(n)d écriture refusée", "%(n)d écritures refusées", rejected) % {"n": rejected})
    if updated:
        parts.append(
            _joined(
                ngettext("%(n)d mise à jour envoyée", "%(n)d mises à jour envoyées", updated) % {"n": updated},
                ngettext("%(n)d refusée", "%(n)d refusées", update_rejected) % {"n": update_rejected}
                if update_rejected
                else "",
            )
        )
    elif update_rejected:
        parts.append(
            ngettext("%(n)d mise à jour refusée", "%(n)d mises à jour refusées", update_rejected)
            % {"n": update_rejected}
        )
    if line.unknown:
        parts.append(
            ngettext("%(n)d écriture à vérifier", "%(n)d écritures à vérifier", line.unknown) % {"n": line.unknown}
        )
    if not (integrated or rejected or updated or update_rejected or line.unknown):
        parts.append(_("aucune écriture à envoyer"))
    if line.open_anomalies:
        parts.append(
            ngettext(
                "%(n)d écriture en anomalie à corriger", "%(n)d écritures en anomalie à corriger", line.open_anomalies
            )
            % {"n": line.open_anomalies}
        )
    return parts
