from django.urls import path

from . import views

app_name = "synchro"

urlpatterns = [
    path("", views.visuel, name="list"),
    path("exporter/", views.export, name="export"),
    path("csv/", views.visuel_csv, name="csv"),
    path("historique/", views.history, name="history"),
    path("executions/<int:pk>/", views.run_detail, name="run"),
    path("executions/<int:pk>/avancement/", views.run_progress, name="run_progress"),
    path("anomalies/<int:invoice_pk>/", views.anomaly_detail, name="anomaly"),
    path("synchroniser/", views.synchronise_now, name="sync_now"),
    path("dernieres/", views.recent_runs, name="recent_runs"),
]
