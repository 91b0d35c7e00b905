"""Cross-project harness providers: a webhook endpoint of project A's owner, with a message."""
from portal.webhooks.models import WebhookEndpoint, WebhookMessage
from tests.cross_project import provides


@provides("webhookId")
def webhook_of_a(ctx) -> int:
    def create():
        endpoint = WebhookEndpoint.unscoped_objects.create(
            project=ctx.project, owner=ctx.owner.user, url=f"https://hooks.example.com/{ctx.marker}",
            description=f"{ctx.marker} hook", events=["order.created"], secret="whsec_c2VjcmV0c2VjcmV0c2VjcmV0")
        WebhookMessage.unscoped_objects.create(
            project=ctx.project, endpoint=endpoint, msg_id=f"msg_{ctx.marker}", event_type="order.created",
            payload=f'{{"type":"order.created","data":{{"label":"{ctx.marker}"}}}}',
            created_at=endpoint.created_at)
        return endpoint.pk

    return ctx.once("webhook", create)
