from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from config.health import health
from incidents import api

api_v1 = [
    path("auth/token/", api.TokenView.as_view(), name="token"),
    path("reports/", api.ReportCreateView.as_view(), name="report-create"),
    path("reports/<str:reference>/", api.ReportDetailView.as_view(), name="report-detail"),
]

urlpatterns = [
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("twilio/", include("notifications.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/v1/", include((api_v1, "api"))),
    path("health/", health, name="health"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include("incidents.urls")),
]
