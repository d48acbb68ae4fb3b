from django.contrib.auth import views as auth_views
from django.urls import path

from . import views
from .login import LoginView

app_name = "accounts"

urlpatterns = [
    path("", views.rights, name="rights"),
]

auth_urlpatterns = [
    path("login/", LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
]
