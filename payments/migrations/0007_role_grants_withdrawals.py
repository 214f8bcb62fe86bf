"""Withdrawals for the staff roles: Finance approves (four eyes), Compliance and Support look (see crm/roles.py)."""

from django.db import migrations

GRANTS = {
    "Finance": ["payments.view_withdrawal", "payments.change_withdrawal", "payments.approve_withdrawal"],
    "Compliance": ["payments.view_withdrawal"],
    "Support": ["payments.view_withdrawal"],
}


def forwards(apps, schema_editor):
    from crm.roles import sync_roles

    sync_roles(apps, GRANTS)


class Migration(migrations.Migration):
    dependencies = [("payments", "0006_withdrawals"), ("crm", "0002_staff_roles")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
