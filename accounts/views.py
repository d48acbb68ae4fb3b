"""« Administration → Droits »: who may do what, and on which companies."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required, permission_required
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied, SuspiciousOperation
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_http_methods

from companies.selectors import companies_for_user
from core.ids import keys_of

from . import selectors
from .rights import RIGHTS, RIGHTS_BY_PERM
from .selectors import ManagerScope
from .services import GroupRights, RightsDenied, RightsError, UserRights, rights_save

RIGHT = "accounts.manage_rights"


class SearchForm(forms.Form):
    # A form field refuses what PostgreSQL cannot hold (NUL) and cuts the length.
    q = forms.CharField(required=False, max_length=100, strip=True)


PAGE_SIZE = 25


def _ints(values: list[str]) -> set[int]:
    try:
        return keys_of(values)
    except ValueError:
        raise SuspiciousOperation("identifiant invalide") from None


def _perms(values: list[str]) -> set[str]:
    perms = set(values)
    if not perms <= set(RIGHTS_BY_PERM):
        raise SuspiciousOperation("droit inconnu")
    return perms


def _submitted(request, scope: ManagerScope) -> tuple[list[UserRights], list[GroupRights]]:
    post = request.POST
    user_ids = _ints(post.getlist("users"))
    group_ids = _ints(post.getlist("groups_shown"))
    if get_user_model().objects.filter(pk__in=user_ids, is_active=True).count() != len(user_ids):
        raise Http404
    known_groups = set(Group.objects.values_list("pk", flat=True))
    if not group_ids <= known_groups:
        raise Http404
    users = []
    for pk in sorted(user_ids):
        company_ids = _ints(post.getlist(f"companies-u{pk}"))
        if not company_ids <= scope.company_ids:
            raise Http404
        member_of = _ints(post.getlist(f"groups-u{pk}"))
        if not member_of <= known_groups:
            raise Http404
        all_key = f"all-u{pk}"
        # A control the screen does not offer this manager is absent from the form: absent means « unchanged ».
        # Anything sent for it anyway is checked against the stored value by the service.
        offered = scope.every_company
        users.append(
            UserRights(
                user_id=pk,
                perms=_perms(post.getlist(f"perm-u{pk}")),
                group_ids=member_of if offered or member_of else None,
                all_companies=post.get(all_key) == "on" if offered or all_key in post else None,
                company_ids=company_ids,
            )
        )
    groups = [GroupRights(group_id=pk, perms=_perms(post.getlist(f"perm-g{pk}"))) for pk in sorted(group_ids)]
    return users, groups


@require_http_methods(["GET", "POST"])
@login_required
@permission_required(RIGHT, raise_exception=True)
def rights(request):
    scope = selectors.manager_scope(request.user)
    search = SearchForm(request.GET)
    query = search.cleaned_data["q"] if search.is_valid() else ""
    if request.method == "POST":
        users, groups = _submitted(request, scope)
        try:
            changes = rights_save(actor=request.user, users=users, groups=groups)
        except RightsDenied as denied:
            # Shown on the 403 page: the screen offered no such change, so the page was stale or the form forged.
            messages.error(request, str(denied))
            raise PermissionDenied from None
        except RightsError as error:
            messages.error(request, str(error))
        else:
            if changes:
                messages.success(
                    request,
                    ngettext(
                        "Droits enregistrés : %(count)d modification.",
                        "Droits enregistrés : %(count)d modifications.",
                        len(changes),
                    )
                    % {"count": len(changes)},
                )
            else:
                messages.info(request, _("Aucune modification."))
        url = reverse("accounts:rights")
        params = {k: v for k, v in (("q", query), ("page", request.GET.get("page", ""))) if v}
        return redirect(f"{url}?{urlencode(params)}" if params else url)

    page = Paginator(selectors.users_for_matrix(query), PAGE_SIZE).get_page(request.GET.get("page"))
    groups = selectors.groups_for_matrix()
    context = {
        "rights": RIGHTS,
        "rows": selectors.matrix_rows(page.object_list, scope=scope, groups=groups),
        "page": page,
        "query": query,
        "scope": scope,
        "gives_only_held": scope.held != set(RIGHTS_BY_PERM),
        "every_company_only": selectors.EVERY_COMPANY_ONLY,
        "groups": groups,
        "group_rows": selectors.group_rows(scope=scope, groups=groups),
        "companies": companies_for_user(request.user).only("pk", "code", "name"),
        "audit": selectors.rights_audit(scope),
    }
    return render(request, "accounts/rights.html", context)
