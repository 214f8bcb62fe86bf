"""Create the staff role groups and grant them the CRM's permissions (see crm/roles.py)."""

from django.db import migrations


def forwards(apps, schema_editor):
    from crm.roles import CRM_GRANTS, sync_roles

    sync_roles(apps, CRM_GRANTS)


class Migration(migrations.Migration):
    dependencies = [
        ("crm", "0001_initial"),
        ("auth", "__latest__"),
        ("contenttypes", "__latest__"),
        # Third-party models whose permissions the Administrator role should hold from the start.
        ("django_celery_beat", "__latest__"),
        ("mfa", "__latest__"),
        ("account", "__latest__"),
        ("sessions", "__latest__"),
        ("admin", "__latest__"),
    ]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
