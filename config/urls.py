from django.urls import include, path

from accounts.urls import auth_urlpatterns
from config import health
from core import views as core_views
from synchro import dashboard

urlpatterns = [
    path("", dashboard.home, name="home"),
    # Browsers ask for it at the root whatever the page says.
    path("favicon.ico", core_views.favicon, name="favicon"),
    path("healthz", health.healthz, name="healthz"),
    path("accounts/", include(auth_urlpatterns)),
    path("administration/droits/", include("accounts.urls")),
    path("administration/societes/", include("companies.urls")),
    path("administration/synchronisations/", include("synchro.urls")),
    path("administration/connecteurs/", include("connectors.urls")),
    path("factures/", include("invoices.urls")),
]
