from django.urls import path

from . import views, views_document

app_name = "invoices"

urlpatterns = [
    path("", views.invoice_list, name="list"),
    path("<int:pk>/", views.invoice_detail, name="detail"),
    path("<int:pk>/valider/", views.invoice_validate, name="validate"),
    path("<int:pk>/bap/", views.invoice_bap, name="bap"),
    path("<int:pk>/document/", views_document.invoice_document, name="document"),
    path("<int:pk>/document/pages/<int:page>/", views_document.invoice_document_page, name="document_page"),
    path("importer/", views.invoices_import, name="import"),
    path("imports/", views.imports_list, name="imports"),
    path("imports/importer/", views.imports_scan, name="imports_scan"),
    path("imports/analyses/<uuid:batch>/", views.imports_progress, name="imports_progress"),
    path("imports/<int:pk>/fichier/", views.intake_file_download, name="import_file"),
    path("imports/<int:pk>/reessayer/", views.intake_file_retry, name="import_retry"),
]
