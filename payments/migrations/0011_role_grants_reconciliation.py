"""Finance and Compliance read reconciliation reports (see crm/roles.py)."""

from django.db import migrations

GRANTS = {
    "Finance": ["payments.view_reconciliationreport"],
    "Compliance": ["payments.view_reconciliationreport"],
}


def forwards(apps, schema_editor):
    from crm.roles import sync_roles

    sync_roles(apps, GRANTS)


class Migration(migrations.Migration):
    dependencies = [("payments", "0010_reconciliation"), ("crm", "0002_staff_roles")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
