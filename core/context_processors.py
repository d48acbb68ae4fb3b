"""The menu, built from the rights of the user: it shows only what the user may open."""

from __future__ import annotations

from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext_lazy as _

# (label, url name, permission) — the manual's words.
ADMINISTRATION_MENU = (
    (_("Société"), "companies:list", "companies.update_companies"),
    (_("Visuel Synchronisations"), "synchro:list", "synchro.view_synchronisations"),
    (_("Historique des synchronisations"), "synchro:history", "synchro.view_synchronisations"),
    (_("Paramétrage des connecteurs"), "connectors:settings", "connectors.manage_connectors"),
    (_("Droits"), "accounts:rights", "accounts.manage_rights"),
)
MAIN_MENU = (
    (_("Factures"), "invoices:list", "invoices.view_invoices"),
    (_("Imports"), "invoices:imports", "invoices.view_invoices"),
)


def _entries(user, menu, path: str) -> list[dict]:
    entries = []
    for label, url_name, permission in menu:
        if not user.has_perm(permission):
            continue
        try:
            url = reverse(url_name)
        except NoReverseMatch:
            continue
        entries.append({"label": label, "url": url, "name": url_name, "active": False})
    # The longest matching prefix is the page's entry (the history lives under Visuel Synchronisations' URL).
    matching = [entry for entry in entries if path.startswith(entry["url"])]
    if matching:
        max(matching, key=lambda entry: len(entry["url"]))["active"] = True
    return entries


def menu(request) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"main_menu": [], "administration_menu": []}
    path = request.path
    return {
        "main_menu": _entries(user, MAIN_MENU, path),
        "administration_menu": _entries(user, ADMINISTRATION_MENU, path),
    }
