"""Staff roles as Django groups with explicit permissions.

The grants live here, in code, and are applied by data migrations (this app's, and each later app's for its own
models), so a fresh database and an old one end with the same groups. Each function takes the migration's `apps`
registry and touches only permissions that exist there; none imports another app.
"""

from __future__ import annotations

SUPPORT = "Support"
COMPLIANCE = "Compliance"
FINANCE = "Finance"
DEALING = "Dealing"
IB_MANAGER = "IB Manager"
ADMINISTRATOR = "Administrator"
ROLES = (SUPPORT, COMPLIANCE, FINANCE, DEALING, IB_MANAGER, ADMINISTRATOR)

# Every role looks clients up; only Support edits their contact data. Administrators get every permission.
CRM_GRANTS: dict[str, list[str]] = {
    SUPPORT: ["crm.view_user", "crm.change_user", "crm.view_clientprofile", "crm.change_clientprofile"],
    COMPLIANCE: ["crm.view_user", "crm.view_clientprofile"],
    FINANCE: ["crm.view_user", "crm.view_clientprofile"],
    DEALING: ["crm.view_user", "crm.view_clientprofile"],
    IB_MANAGER: ["crm.view_user", "crm.view_clientprofile"],
}


def ensure_permissions(apps) -> None:
    """Create the permission rows of every model known to the migration state (Django normally does this only
    after the whole migrate run, too late for a data migration that grants them)."""
    from django.contrib.auth.management import create_permissions

    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None


def grant_role_permissions(apps, grants: dict[str, list[str]]) -> None:
    """Add `app_label.codename` permissions to role groups, creating the groups. Idempotent."""
    group_model = apps.get_model("auth", "Group")
    permission_model = apps.get_model("auth", "Permission")
    for role, names in grants.items():
        if role not in ROLES:
            raise ValueError(f"Unknown staff role {role!r}.")
        group, _ = group_model.objects.get_or_create(name=role)
        for name in names:
            app_label, codename = name.split(".", 1)
            permission = permission_model.objects.get(content_type__app_label=app_label, codename=codename)
            group.permissions.add(permission)


def grant_administrator_everything(apps) -> None:
    """The Administrator role holds every permission that exists now. Later apps call this again."""
    group_model = apps.get_model("auth", "Group")
    permission_model = apps.get_model("auth", "Permission")
    group, _ = group_model.objects.get_or_create(name=ADMINISTRATOR)
    group.permissions.add(*permission_model.objects.all())


def sync_roles(apps, grants: dict[str, list[str]] | None = None) -> None:
    """What a data migration calls: permissions exist, every role group exists, the grants are applied."""
    ensure_permissions(apps)
    group_model = apps.get_model("auth", "Group")
    for role in ROLES:
        group_model.objects.get_or_create(name=role)
    if grants:
        grant_role_permissions(apps, grants)
    grant_administrator_everything(apps)


def sync_roles_operation(grants: dict[str, list[str]] | None = None):
    """The RunPython operation each app's role-grant migration uses: `operations = [sync_roles_operation(GRANTS)]`."""
    from django.db import migrations

    def forwards(apps, schema_editor):
        sync_roles(apps, grants)

    return migrations.RunPython(forwards, migrations.RunPython.noop)
