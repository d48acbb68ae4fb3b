from __future__ import annotations

from django.http import HttpResponsePermanentRedirect
from django.templatetags.static import static
from django.views.decorators.http import require_safe


@require_safe
def favicon(request):
    """Browsers ask for /favicon.ico whatever the page says; the icon's name is only known at run time (hashed)."""
    return HttpResponsePermanentRedirect(static("favicon.svg"))
