from django.urls import path

from . import apis, pages

P = "api/v1/webhooks"

urlpatterns = [
    path(P, apis.WebhookListCreateApi.as_view(), name="webhooks"),
    path(f"{P}/<int:webhookId>", apis.WebhookDetailApi.as_view(), name="webhook"),
    path(f"{P}/<int:webhookId>/test", apis.WebhookTestApi.as_view(), name="webhook-test"),
    path(f"{P}/<int:webhookId>/deliveries", apis.WebhookDeliveriesApi.as_view(), name="webhook-deliveries"),
    path("projects/<slug:slug>/settings/webhooks/", pages.webhook_settings, name="page-webhooks"),
    path("projects/<slug:slug>/settings/webhooks/<int:webhook_id>/<slug:action>", pages.webhook_action,
         name="page-webhook-action"),
]
