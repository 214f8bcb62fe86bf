"""Who sees the analytics (see crm/roles.py): Finance, Compliance and Dealing read the dashboards and export the
tables; Dealing also watches the live exposure. Administrators get everything, as always."""

from django.db import migrations

from crm.roles import sync_roles_operation

DASHBOARD = ["analytics.view_dashboard"]
GRANTS = {
    "Finance": [*DASHBOARD, "analytics.view_fillstate"],
    "Compliance": DASHBOARD,
    "Dealing": [*DASHBOARD, "analytics.view_exposure", "analytics.view_fillstate"],
}


class Migration(migrations.Migration):
    dependencies = [("analytics", "0001_initial"), ("crm", "0002_staff_roles")]

    operations = [sync_roles_operation(GRANTS)]
