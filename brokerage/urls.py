from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from brokerage import health
from kyc.webhooks import kyc_webhook
from payments import sandbox_views
from payments.webhooks import psp_webhook
from portal.ib_views import referral_link

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("webhooks/kyc/<slug:provider>/", kyc_webhook, name="kyc-webhook"),
    path("webhooks/psp/<slug:provider>/", psp_webhook, name="psp-webhook"),
    path("psp/sandbox/pay/<slug:reference>/", sandbox_views.pay, name="sandbox_psp_pay"),
    path("psp/sandbox/pay/<slug:reference>/3ds/", sandbox_views.challenge, name="sandbox_psp_challenge"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/v1/", include("portal.api_urls")),
    path("ib/", include("portal.ib_urls")),
    path("r/<slug:code>/", referral_link, name="referral_link"),
    path("staff/analytics/", include("analytics.urls")),
    path("", include("portal.urls")),
]

handler400 = "portal.views.error_400"
handler403 = "portal.views.error_403"
handler404 = "portal.views.error_404"
handler500 = "portal.views.error_500"
