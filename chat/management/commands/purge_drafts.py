from django.core.management.base import BaseCommand

from chat.uploads.attachments import purge_stale_drafts


class Command(BaseCommand):
    help = "Delete images uploaded over a day ago and never sent, with their bytes (run it daily, e.g. by Scheduler)."

    def handle(self, *args, **options):
        self.stdout.write(f"Deleted {purge_stale_drafts()} unsent image(s).")
