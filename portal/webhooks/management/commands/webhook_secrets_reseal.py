"""Seals every webhook signing secret again under the first key of WEBHOOK_SECRET_KEYS."""
from django.core.management.base import BaseCommand, CommandError

from portal.webhooks import services
from portal.webhooks.signing import SecretUnreadable


class Command(BaseCommand):
    help = ("Re-seals every webhook endpoint's signing secret under the first key of WEBHOOK_SECRET_KEYS "
            "(run after prepending a new key, before dropping the old one).")

    def handle(self, *args, **options):
        try:
            count = services.webhook_secrets_reseal()
        except SecretUnreadable as exc:
            raise CommandError(exc.message, returncode=2) from None
        self.stdout.write(f"Re-sealed {count} webhook signing secret(s).")
