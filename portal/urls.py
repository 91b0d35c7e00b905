from django.contrib import admin
from django.contrib.auth.views import LoginView
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from portal import health, pages
from portal.tenancy.login import ThrottledAdminLoginForm, ThrottledLoginForm, throttled

admin.site.login_form = ThrottledAdminLoginForm

handler400 = "portal.api.errors.handler400"
handler403 = "portal.api.errors.handler403"
handler404 = "portal.api.errors.handler404"
handler500 = "portal.api.errors.handler500"

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    # Both login pages go through the login limiter (portal.tenancy.ratelimit).
    path("admin/login/", throttled(admin.site.login)),
    path("admin/", admin.site.urls),
    path("accounts/login/", throttled(LoginView.as_view(authentication_form=ThrottledLoginForm)), name="login"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("", include("portal.tenancy.urls")),
    path("", include("portal.catalog.urls")),
    path("", include("portal.webhooks.urls")),
    path("", include("basket.urls")),
    path("", include("orders.urls")),
    path("", include("deliveries.urls")),
    path("", include("portal.pages.urls")),
    path("", pages.home, name="home"),
]
