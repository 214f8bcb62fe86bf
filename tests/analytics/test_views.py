"""The dashboards and exports: who may see them, what they show, how many queries, bad filters."""

from __future__ import annotations

import csv
import io
from datetime import date
from decimal import Decimal

import pytest
from django.urls import reverse
from openpyxl import load_workbook

from analytics.services import analytics_backfill
from crm import roles
from mt5bridge.models import PositionSnapshot
from tests.analytics.conftest import NOW
from tests.analytics.factories import at, deal
from tests.crm.factories import ClientFactory, make_staff

pytestmark = pytest.mark.django_db

MARCH = "?first=2025-03-01&last=2025-03-31&currency=USD"
PAGES = ["overview", "payments", "clients", "ibs", "builds"]


@pytest.fixture
def built(month):
    analytics_backfill(first=date(2025, 3, 1), last=date(2025, 3, 31), now=NOW)
    return month


def _signed_in(client, role: str):
    user, _secret = make_staff(role)
    client.force_login(user)
    return user


@pytest.mark.parametrize("role", [roles.FINANCE, roles.COMPLIANCE, roles.DEALING, roles.ADMINISTRATOR])
def test_roles_with_the_dashboard_permission_see_every_page(client, built, role, django_assert_max_num_queries):
    _signed_in(client, role)
    for page in PAGES:
        with django_assert_max_num_queries(20):
            response = client.get(reverse(f"analytics:{page}") + MARCH)
        assert response.status_code == 200, page
        assert 'id="analytics-charts"' in response.content.decode()


def test_overview_shows_the_month_totals(client, built):
    _signed_in(client, roles.FINANCE)
    response = client.get(reverse("analytics:overview") + MARCH)
    kpis = response.context["kpis"]
    assert kpis["deposits_amount"] == Decimal("3750.40")
    assert kpis["withdrawals_amount"] == Decimal("1500.00")
    assert kpis["net_deposit"] == Decimal("2250.40")
    assert kpis["ftd_count"] == 3
    assert kpis["lots"] == Decimal("3.78")
    assert kpis["broker_pl"] == Decimal("307.53")  # -(12.34-1.75-0.10 -5.55-4.38 -300.01-7.00-1.11 +0.01+0.02)
    body = response.content.decode()
    assert "2,250.40" in body and "vendor/chartjs/chart.umd.min.js" in body
    assert "style=" not in body and "<script>" not in body  # the CSP forbids inline styles and scripts


def test_country_filter_reads_client_rows(client, built):
    _signed_in(client, roles.FINANCE)
    response = client.get(reverse("analytics:overview") + MARCH + "&country=gr")
    kpis = response.context["kpis"]
    assert (kpis["deposits_amount"], kpis["withdrawals_amount"], kpis["ftd_count"]) == (
        Decimal("2000.00"), Decimal("1500.00"), None,
    )  # fmt: skip


def test_clients_ranking_and_payments_provider_filter(client, built):
    _signed_in(client, roles.FINANCE)
    rows = client.get(reverse("analytics:clients") + MARCH + "&order=broker_pl").context["rows"]
    assert rows[0]["email"] == built["bob"].email and rows[0]["broker_pl"] == Decimal("308.09")

    response = client.get(reverse("analytics:payments") + MARCH + "&provider=wire")
    providers = {(row["direction"], row["key"]) for row in response.context["by_provider"]}
    assert providers == {("deposit", "wire"), ("withdrawal", "wire")}


def test_bad_filters_say_what_is_wrong(client, built):
    _signed_in(client, roles.FINANCE)
    response = client.get(reverse("analytics:overview") + "?first=2025-03-31&last=2025-03-01")
    assert response.status_code == 400
    assert "The range is reversed" in response.content.decode()

    response = client.get(reverse("analytics:overview") + "?first=yesterday&country=Germany")
    assert response.status_code == 400
    assert "two-letter country code" in response.content.decode()

    assert client.get(reverse("analytics:clients") + MARCH + "&order=password").status_code == 400
    assert client.get(reverse("analytics:export", args=["client_daily", "csv"]) + "?first=x").status_code == 400


def test_doors_are_shut_to_others(client, built):
    url = reverse("analytics:overview")
    assert client.get(url)["Location"].startswith(reverse("account_login"))  # anonymous: sign in first

    client.force_login(ClientFactory())
    assert client.get(url).status_code == 403  # a client
    assert client.get(reverse("analytics:export", args=["client_daily", "csv"])).status_code == 403

    _signed_in(client, roles.SUPPORT)
    assert client.get(url).status_code == 403  # staff without the permission
    assert client.get(reverse("analytics:export", args=["client_daily", "csv"])).status_code == 403

    user, _ = make_staff(roles.FINANCE, mfa=False)
    client.force_login(user)
    assert client.get(url)["Location"] == reverse("mfa_activate_totp")  # staff must enrol a second factor

    _signed_in(client, roles.COMPLIANCE)
    assert client.get(reverse("analytics:exposure")).status_code == 403  # exposure is for Dealing
    assert client.get(reverse("analytics:export", args=["exposure", "csv"])).status_code == 403
    assert client.get(reverse("analytics:export", args=["nope", "csv"])).status_code == 404
    assert client.get(reverse("analytics:export", args=["client_daily", "pdf"])).status_code == 404


def test_csv_and_xlsx_exports_of_every_table(client, built):
    _signed_in(client, roles.ADMINISTRATOR)
    for table in ("client_daily", "broker_daily", "payments_daily", "exposure"):
        response = client.get(reverse("analytics:export", args=[table, "csv"]) + MARCH)
        assert response.status_code == 200
        assert response["Content-Disposition"].endswith(f'{table}_2025-03-01_2025-03-31_USD.csv"')
        rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
        workbook = load_workbook(
            io.BytesIO(client.get(reverse("analytics:export", args=[table, "xlsx"]) + MARCH).content)
        )
        assert [cell.value for cell in workbook.active[1]] == rows[0]
        assert workbook.active.max_row == len(rows)

    response = client.get(reverse("analytics:export", args=["broker_daily", "csv"]) + MARCH)
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert len(rows) == 31
    six = next(row for row in rows if row["day"] == "2025-03-06")
    assert (six["deposits_amount"], six["broker_pl"]) == ("250.00", "9.93")

    response = client.get(reverse("analytics:export", args=["payments_daily", "xlsx"]) + MARCH)
    sheet = load_workbook(io.BytesIO(response.content)).active
    header = [cell.value for cell in sheet[1]]
    values = [dict(zip(header, [cell.value for cell in row], strict=True)) for row in sheet.iter_rows(min_row=2)]
    withdrawal = next(row for row in values if row["direction"] == "withdrawal")
    assert (withdrawal["amount_succeeded"], withdrawal["success_rate_pct"]) == (1500, 50)


def test_exposure_nets_long_and_short_with_notional(client, month, django_assert_max_num_queries):
    live, a_usd, b_usd = month["live"], month["a_usd"], month["b_usd"]
    deal(a_usd, "2025-04-01 10:00", volume="2.00", position_id=11, symbol="EURUSD", contract_size="100000")
    deal(b_usd, "2025-04-01 10:00", volume="0.50", position_id=12, symbol="EURUSD", contract_size="100000", action=1)
    deal(b_usd, "2025-04-01 10:00", volume="1.00", position_id=13, symbol="USDJPY", contract_size="100000")

    def position(acct, position_id, symbol, action, volume, price):
        PositionSnapshot.objects.create(
            server=live, position_id=position_id, login=acct.login, account=acct, symbol=symbol, action=action,
            volume=Decimal(volume), price_open=Decimal(price), price_current=Decimal(price), profit=Decimal("1.50"),
            swap=Decimal(0), opened_at=at("2025-04-01 10:00"), snapshot_at=at("2025-04-02 11:59"),
        )  # fmt: skip

    position(a_usd, 11, "EURUSD", 0, "2.00", "1.10000")
    position(b_usd, 12, "EURUSD", 1, "0.50", "1.10000")
    position(b_usd, 13, "USDJPY", 0, "1.00", "150.000")
    position(b_usd, 14, "XAUUSD", 1, "0.10", "2400.00")  # no deal imported yet: contract size unknown

    _signed_in(client, roles.DEALING)
    with django_assert_max_num_queries(12):
        response = client.get(reverse("analytics:exposure") + "?server=live-1")
    assert response.status_code == 200
    rows = {row["symbol"]: row for row in response.context["rows"]}
    eur = rows["EURUSD"]
    assert (eur["long_lots"], eur["short_lots"], eur["net_lots"]) == (Decimal("2.00"), Decimal("0.50"), Decimal("1.50"))
    assert eur["notional"] == Decimal("165000.00") and eur["notional_usd"] == Decimal("165000.00")
    jpy = rows["USDJPY"]
    assert (jpy["notional"], jpy["quote"], jpy["notional_usd"]) == (Decimal("15000000.00"), "JPY", Decimal("100000.00"))
    gold = rows["XAUUSD"]
    assert (gold["net_lots"], gold["unsized"], gold["notional"]) == (Decimal("-0.10"), 1, Decimal("0.00"))
    assert "without an imported deal" in response.content.decode()
    assert client.get(reverse("analytics:exposure") + "?server=demo-1").context["rows"] == []
