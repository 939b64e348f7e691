"""The `reviewer` group: staff in it read conversations in the admin and mark inbox items reviewed, nothing else.

Django creates permissions after migrations have run, so on a fresh database they do not exist yet here: they
are created with the same content type, codename and name Django would give them, and Django then finds them.
"""

from django.db import migrations

GROUP = "reviewer"

# (model, action): read every part of a transcript; the only thing a reviewer adds is their own review mark.
PERMISSIONS = [
    ("conversation", "view"),
    ("message", "view"),
    ("attachment", "view"),
    ("feedback", "view"),
    ("reviewmark", "view"),
    ("reviewmark", "add"),
]

VERBOSE_NAMES = {"reviewmark": "review mark"}


def create_group(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    group, _ = Group.objects.get_or_create(name=GROUP)
    for model, action in PERMISSIONS:
        content_type, _ = ContentType.objects.get_or_create(app_label="chat", model=model)
        permission, _ = Permission.objects.get_or_create(
            content_type=content_type,
            codename=f"{action}_{model}",
            defaults={"name": f"Can {action} {VERBOSE_NAMES.get(model, model)}"},
        )
        group.permissions.add(permission)


def delete_group(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name=GROUP).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("chat", "0003_review"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_group, delete_group)]
