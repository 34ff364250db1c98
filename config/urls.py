from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from config.health import health
from incidents import api
from notifications import views as notifications_views
from oncall import api as oncall_api
from staff import api as staff_api
from staff import forms as staff_forms
from staff import views as staff_views

api_v1 = [
    path("auth/token/", api.TokenView.as_view(), name="token"),
    path("auth/tokens/", staff_api.TokenListView.as_view(), name="token-list"),
    path("auth/tokens/<int:token_id>/", staff_api.TokenRevokeView.as_view(), name="token-revoke"),
    path("reports/", api.ReportCreateView.as_view(), name="report-create"),
    path("reports/<str:reference>/", api.ReportDetailView.as_view(), name="report-detail"),
    path("oncall/now/", oncall_api.OnCallNowView.as_view(), name="oncall-now"),
    path(
        "reports/<str:reference>/information/",
        api.ReportInformationView.as_view(),
        name="report-information",
    ),
    path("cases/<str:reference>/", api.CaseDetailView.as_view(), name="case-detail"),
]

urlpatterns = [
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/two-factor/", staff_views.two_factor_verify, name="two-factor-verify"),
    path("accounts/two-factor/setup/", staff_views.two_factor_setup, name="two-factor-setup"),
    path(
        "accounts/password-reset/",
        auth_views.PasswordResetView.as_view(form_class=staff_forms.PasswordResetForm),
        name="password_reset",
    ),
    path(
        "accounts/password-reset/sent/",
        auth_views.PasswordResetDoneView.as_view(),
        name="password_reset_done",
    ),
    path(
        "accounts/reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "accounts/reset/done/",
        auth_views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
    path("admin/", admin.site.urls),
    path("twilio/", include("notifications.urls")),
    path("me/paging/", notifications_views.paging_preferences, name="paging-preferences"),
    path("staff/", include("staff.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/v1/", include((api_v1, "api"))),
    path("health/", health, name="health"),
    path("i18n/language/", staff_views.set_language, name="set-language"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("oncall/", include("oncall.urls")),
    path("", include("incidents.urls")),
]

handler404 = "config.views.not_found"
handler500 = "config.views.server_error"
