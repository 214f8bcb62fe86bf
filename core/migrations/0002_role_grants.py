"""Compliance and Finance see the webhook inbox; Compliance may replay KYC events (see crm/roles.py)."""

from django.db import migrations

from crm.roles import sync_roles_operation

GRANTS = {
    "Compliance": ["core.view_webhookevent", "core.change_webhookevent", "core.view_webhookrejection"],
    "Finance": ["core.view_webhookevent", "core.change_webhookevent", "core.view_webhookrejection"],
    "Support": ["core.view_webhookevent"],
}


class Migration(migrations.Migration):
    dependencies = [("core", "0001_initial"), ("crm", "0002_staff_roles")]

    operations = [sync_roles_operation(GRANTS)]
