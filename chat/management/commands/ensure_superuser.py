"""``manage.py ensure_superuser``: create the first admin from the environment, once; run by the release phase.

Reads DJANGO_SUPERUSER_USERNAME, DJANGO_SUPERUSER_PASSWORD and DJANGO_SUPERUSER_EMAIL (the names Django's own
``createsuperuser --noinput`` uses). With no username it does nothing; if that user exists it does nothing,
whatever the password says, so the variables can stay set (or the password be removed) after the first release.
A username without a password, or a password the validators refuse, fails the command: a release that silently
creates no admin is worse than one that says why. The password is never printed.
"""

import os

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import IntegrityError


class Command(BaseCommand):
    help = "Create the superuser named by DJANGO_SUPERUSER_USERNAME if it does not exist yet."

    def handle(self, *args, **options):
        username = os.environ.get("DJANGO_SUPERUSER_USERNAME", "").strip()
        if not username:
            self.stdout.write("ensure_superuser: DJANGO_SUPERUSER_USERNAME is not set; nothing to do.")
            return
        User = get_user_model()
        if User._default_manager.filter(**{User.USERNAME_FIELD: username}).exists():
            self.stdout.write(f"ensure_superuser: {username!r} already exists; left unchanged.")
            return
        password = os.environ.get("DJANGO_SUPERUSER_PASSWORD", "")
        if not password:
            raise CommandError("DJANGO_SUPERUSER_USERNAME is set but DJANGO_SUPERUSER_PASSWORD is empty.")
        if self._create(User, username, password, os.environ.get("DJANGO_SUPERUSER_EMAIL", "").strip()):
            self.stdout.write(f"ensure_superuser: created superuser {username!r}.")
        else:
            self.stdout.write(f"ensure_superuser: {username!r} was created concurrently; left unchanged.")

    def _create(self, User, username, password, email):
        """Create the superuser; False if another process created that username first."""
        user = User(**{User.USERNAME_FIELD: username})
        try:
            validate_password(password, user)
        except ValidationError as exc:
            # The validators' messages describe the rule broken, never the password itself.
            raise CommandError("DJANGO_SUPERUSER_PASSWORD was refused: " + " ".join(exc.messages)) from None
        try:
            User._default_manager.create_superuser(**{User.USERNAME_FIELD: username}, email=email, password=password)
        except IntegrityError:
            return False
        return True
