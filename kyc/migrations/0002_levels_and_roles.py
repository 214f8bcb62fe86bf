"""Seed the verification levels (data, editable later by Compliance) and grant KYC permissions to staff roles."""

from decimal import Decimal

from django.db import migrations


LEVELS = [
    # code, name, rank, deposit, withdraw, live, trade, max deposit total, max withdrawal, auto-approve, documents
    ("registered", "Email verified", 0, False, False, False, False, Decimal("0"), Decimal("0"), Decimal("0"), []),
    ("identity", "Identity verified", 1, True, True, True, True, Decimal("2000"), Decimal("2000"), Decimal("0"),
     ["identity"]),
    ("full", "Fully verified", 2, True, True, True, True, None, Decimal("50000"), Decimal("1000"),
     ["identity", "address"]),
]  # fmt: skip

GRANTS = {
    "Compliance": [
        "kyc.view_verificationlevel",
        "kyc.change_verificationlevel",
        "kyc.view_clientcompliance",
        "kyc.change_clientcompliance",
        "kyc.view_kyccase",
        "kyc.change_kyccase",
        "kyc.view_kycdocument",
        "kyc.view_document_file",
        "kyc.view_compliancehold",
        "kyc.add_compliancehold",
        "kyc.change_compliancehold",
        "kyc.view_amlalert",
        "kyc.change_amlalert",
        "kyc.view_amlalertnote",
        "kyc.add_amlalertnote",
    ],
    "Support": ["kyc.view_kyccase", "kyc.view_clientcompliance", "kyc.view_verificationlevel"],
    "Finance": ["kyc.view_clientcompliance", "kyc.view_compliancehold", "kyc.view_verificationlevel"],
    "IB Manager": ["kyc.view_clientcompliance"],
}


def forwards(apps, schema_editor):
    from crm.roles import sync_roles

    level_model = apps.get_model("kyc", "VerificationLevel")
    for code, name, rank, dep, wd, live, trade, max_dep, max_wd, auto, docs in LEVELS:
        level_model.objects.update_or_create(
            code=code,
            defaults={
                "name": name,
                "rank": rank,
                "may_deposit": dep,
                "may_withdraw": wd,
                "may_open_live_account": live,
                "may_trade": trade,
                "max_deposit_total": max_dep,
                "max_withdrawal": max_wd,
                "auto_approve_withdrawal_up_to": auto,
                "required_documents": docs,
            },
        )
    sync_roles(apps, GRANTS)


class Migration(migrations.Migration):
    dependencies = [("kyc", "0001_initial"), ("crm", "0002_staff_roles")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
