"""Endpoints' signing secrets sealed at rest (portal.webhooks.signing)."""
from django.db import migrations, models


def seal_clear_secrets(apps, schema_editor):
    from portal.webhooks.signing import SEALED_PREFIX, secret_seal

    endpoints = apps.get_model("webhooks", "WebhookEndpoint")._base_manager
    for pk, stored in endpoints.exclude(sealed_secret__startswith=SEALED_PREFIX).values_list("pk", "sealed_secret"):
        endpoints.filter(pk=pk).update(sealed_secret=secret_seal(stored))


class Migration(migrations.Migration):
    dependencies = [("webhooks", "0001_webhook_endpoints_messages_attempts")]

    operations = [
        migrations.RenameField("webhookendpoint", "secret", "sealed_secret"),
        migrations.AlterField("webhookendpoint", "sealed_secret", models.TextField()),
        migrations.RunPython(seal_clear_secrets, migrations.RunPython.noop),
    ]
