from django.urls import path

from . import views

app_name = "connectors"

urlpatterns = [
    path("", views.connector_settings, name="settings"),
    path("nouveau/", views.connector_save, name="create"),
    path("<int:pk>/", views.connector_save, name="save"),
    path("<int:pk>/tester/", views.connector_test, name="test"),
    path("synchronisation/", views.schedule_save, name="schedule"),
    path("synchronisation/desactiver/", views.schedule_disable, name="schedule_disable"),
    path("synchronisation/activer/", views.schedule_enable, name="schedule_enable"),
]
