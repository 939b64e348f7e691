from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from chat.web import health
from chat.web import pages as chat_views

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/signup/", chat_views.signup, name="signup"),
    path("", include("chat.urls")),
]
