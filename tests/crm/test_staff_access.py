"""The back-office door: staff only, second factor required, each role limited to its permissions."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission
from django.urls import reverse

from crm import roles
from tests.crm.factories import PASSWORD, ClientFactory, make_staff, totp_code

pytestmark = pytest.mark.django_db


def _perms(role: str) -> set[str]:
    group = Group.objects.get(name=role)
    return {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.select_related("content_type")}


def test_every_role_exists_with_its_grants():
    assert set(Group.objects.values_list("name", flat=True)) >= set(roles.ROLES)
    assert set(roles.CRM_GRANTS[roles.SUPPORT]) <= _perms(roles.SUPPORT)
    assert not {p for p in _perms(roles.SUPPORT) if p.startswith(("auth.", "django_celery_beat."))}
    assert "crm.change_user" not in _perms(roles.FINANCE)
    assert _perms(roles.ADMINISTRATOR) == {
        f"{app}.{code}" for app, code in Permission.objects.values_list("content_type__app_label", "codename")
    }


def test_admin_login_page_is_the_allauth_flow(client):
    response = client.get("/admin/login/")

    assert response.status_code == 200
    assert "Staff sign in" in response.content.decode()


def test_staff_sign_in_asks_for_the_second_factor_then_opens_the_admin(client):
    user, secret = make_staff(roles.SUPPORT)

    response = client.post(reverse("account_login"), {"login": user.email, "password": PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == reverse("mfa_authenticate")
    assert client.get("/admin/").status_code == 302  # not signed in until the code is given

    response = client.post(reverse("mfa_authenticate"), {"code": totp_code(secret)})
    assert response.status_code == 302
    assert client.get("/admin/").status_code == 200


def test_wrong_second_factor_keeps_the_door_shut(client):
    user, _secret = make_staff(roles.SUPPORT)
    client.post(reverse("account_login"), {"login": user.email, "password": PASSWORD})

    response = client.post(reverse("mfa_authenticate"), {"code": "000000"})

    assert response.status_code == 200
    assert "_auth_user_id" not in client.session


def test_staff_without_mfa_is_sent_to_enrol(client):
    user, _ = make_staff(roles.FINANCE, mfa=False)
    client.force_login(user)

    response = client.get("/admin/crm/user/")

    assert response.status_code == 302
    assert response["Location"] == reverse("mfa_activate_totp")


def test_clients_are_refused_by_the_back_office(client):
    client.force_login(ClientFactory())

    response = client.get("/admin/", follow=True)

    assert response.status_code == 403
    assert "staff only" in response.content.decode()


@pytest.mark.parametrize(
    ("role", "url", "expected"),
    [
        (roles.SUPPORT, "/admin/crm/user/", 200),
        (roles.FINANCE, "/admin/crm/user/", 200),
        (roles.FINANCE, "/admin/auth/group/", 403),
        (roles.COMPLIANCE, "/admin/django_celery_beat/periodictask/", 403),
        (roles.ADMINISTRATOR, "/admin/django_celery_beat/periodictask/", 200),
        (roles.ADMINISTRATOR, "/admin/auth/group/", 200),
    ],
)
def test_each_role_sees_only_what_its_permissions_allow(client, role, url, expected):
    user, _ = make_staff(role)
    client.force_login(user)

    assert client.get(url).status_code == expected


def test_support_may_edit_a_client_but_finance_may_only_look(client):
    target = ClientFactory()
    support, _ = make_staff(roles.SUPPORT)
    finance, _ = make_staff(roles.FINANCE)
    change_url = f"/admin/crm/user/{target.pk}/change/"
    form = {
        "email": target.email,
        "first_name": "Renamed",
        "last_name": target.last_name,
        "is_active": "on",
        "date_joined_0": "2026-01-01",
        "date_joined_1": "00:00:00",
        "client_profile-TOTAL_FORMS": "1",
        "client_profile-INITIAL_FORMS": "1",
        "client_profile-MIN_NUM_FORMS": "0",
        "client_profile-MAX_NUM_FORMS": "1",
        "client_profile-0-id": target.client_profile.pk,
        "client_profile-0-user": target.pk,
    }

    client.force_login(finance)
    client.post(change_url, form)
    target.refresh_from_db()
    assert target.first_name != "Renamed"

    client.force_login(support)
    response = client.post(change_url, form)
    target.refresh_from_db()
    assert response.status_code == 302, response.content.decode()[:2000]
    assert target.first_name == "Renamed"


def test_user_changelist_query_count_does_not_grow_with_rows(client, django_assert_max_num_queries):
    admin_user, _ = make_staff(roles.ADMINISTRATOR)
    ClientFactory.create_batch(30)
    client.force_login(admin_user)

    with django_assert_max_num_queries(15):
        assert client.get("/admin/crm/user/").status_code == 200
