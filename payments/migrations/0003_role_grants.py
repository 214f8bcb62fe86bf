"""Finance and Compliance read the ledger (see crm/roles.py); nobody edits it through the admin."""

from django.db import migrations

from crm.roles import sync_roles_operation

VIEW = ["payments.view_ledgeraccount", "payments.view_ledgertransaction", "payments.view_ledgerentry"]
GRANTS = {"Finance": VIEW, "Compliance": VIEW, "Support": ["payments.view_ledgeraccount"]}


class Migration(migrations.Migration):
    dependencies = [("payments", "0002_ledger_guards"), ("crm", "0002_staff_roles")]

    operations = [sync_roles_operation(GRANTS)]
