from django.urls import path

from . import views

app_name = "companies"

urlpatterns = [
    path("", views.company_list, name="list"),
    path("mettre-a-jour/", views.company_pull, name="pull"),
    path("decouvrir/", views.companies_discover, name="discover"),
    path("<int:pk>/", views.company_detail, name="detail"),
    path("<int:pk>/etat/", views.company_status, name="status"),
]
