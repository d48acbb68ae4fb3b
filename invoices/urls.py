from django.urls import path

from . import views

app_name = "invoices"

urlpatterns = [
    path("", views.invoice_list, name="list"),
    path("<int:pk>/", views.invoice_detail, name="detail"),
    path("<int:pk>/valider/", views.invoice_validate, name="validate"),
    path("<int:pk>/bap/", views.invoice_bap, name="bap"),
    path("importer/", views.invoices_import, name="import"),
]
