from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class CrmConfig(AppConfig):
    name = "crm"
    verbose_name = "Clients and staff"
    default = True


class BackOfficeAdminConfig(admin_apps.AdminConfig):
    """The Django admin, with a site that demands a second factor from every staff user."""

    default = False
    default_site = "crm.admin_site.BackOfficeAdminSite"
