"""The nightly AML run over the analytics tables: the look-back facts `kyc`'s rules need, built per client.

Who is looked at, and how much each client traded day by day, come from `ClientDaily`; the movements themselves
(each deposit and withdrawal, with its instrument) come from payments through `payments.aml`'s own converters, so a
hit found here has the same `dedup_key` as the one payments raises when the money moves, and makes one alert.

The window is judged as of the END of the trading day built (`now` = the day's end), so a rerun or a backfill of an
old day sees exactly what that night saw, and VelocitySpike's "last day" is that trading day.

Approximation, stated: kyc's rules count trading per UTC calendar day, while `ClientDaily` days are the broker's
trading days (EET/EEST). A trading day is passed as the calendar day of the same date; at the edges of a
deposit-to-withdrawal period that shifts two or three hours of trading into the neighbouring day.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import DEFAULT_DB_ALIAS
from django.db.models import Q, Sum

from analytics.days import day_window, trading_day
from analytics.models import ClientDaily
from core.db import DecimalSum
from kyc.aml import FactWindow, TradingActivity
from kyc.services.aml import aml_evaluate
from payments.aml import SETTLED, _client_facts, _movement, _withdrawal_movement
from payments.models import Deposit, Withdrawal

logger = logging.getLogger(__name__)

LOOKBACK = timedelta(days=31)
# Read right after the build wrote them: never from a replica that may not have caught up yet.
PRIMARY = DEFAULT_DB_ALIAS


def _fx_to_usd() -> dict[str, Decimal]:
    return {code: Decimal(rate) for code, rate in settings.PAYMENTS_FX_TO_USD.items()}


def aml_candidates(*, day: date) -> list[int]:
    """Clients with a settled deposit or withdrawal in the look-back period ending with `day` (from the tables)."""
    first = day - LOOKBACK + timedelta(days=1)
    return list(
        ClientDaily.objects.using(PRIMARY)
        .filter(day__gte=first, day__lte=day)
        .filter(Q(deposits_count__gt=0) | Q(withdrawals_count__gt=0))
        .values_list("user_id", flat=True)
        .distinct()
        .order_by("user_id")
    )


def _activity(user_ids: list[int], first: date, last: date) -> dict[int, list[TradingActivity]]:
    """Lots and trades per client and trading day, summed over currencies, from ClientDaily (one query)."""
    rows = (
        ClientDaily.objects.using(PRIMARY)
        .filter(user_id__in=user_ids, day__gte=first, day__lte=last, trades__gt=0)
        .values("user_id", "day")
        .annotate(total_lots=DecimalSum("lots"), total_trades=Sum("trades"))
        .order_by("user_id", "day")
    )
    by_user: dict[int, list[TradingActivity]] = defaultdict(list)
    for row in rows:
        lots = row["total_lots"]
        by_user[row["user_id"]].append(
            TradingActivity(client_id=row["user_id"], day=row["day"], lots=lots, trades=int(row["total_trades"]))
        )
    return by_user


def client_window(*, user, day: date, activity: list[TradingActivity]) -> FactWindow:
    """One client's facts for the look-back period ending with the trading day `day`, as of the day's end."""
    _, end = day_window(day)
    since = end - LOOKBACK
    deposits = Deposit.objects.filter(user=user, created_at__gte=since, created_at__lt=end, state__in=SETTLED)
    withdrawals = Withdrawal.objects.filter(user=user, created_at__gte=since, created_at__lt=end).select_related(
        "source_deposit"
    )
    prior = (
        Deposit.objects.filter(user=user, created_at__lt=since, state__in=SETTLED)
        .values_list("provider", flat=True)
        .distinct()
    )
    return FactWindow(
        client=_client_facts(user),
        movements=tuple(_movement(d) for d in deposits) + tuple(_withdrawal_movement(w) for w in withdrawals),
        activity=tuple(activity),
        now=end,
        fx_to_usd=_fx_to_usd(),
        # The same fingerprint payments gives a card deposit, so an old card still counts as the client's.
        prior_deposit_instruments=frozenset(f"{provider}:card" for provider in prior),
    )


def aml_nightly_run(*, day: date) -> list:
    """Evaluate the configured AML rules for every candidate client of `day`; returns the alerts raised now.

    Idempotent: kyc stores each hit once per `dedup_key`. Needs `ClientDaily` built for the look-back period.
    """
    candidates = aml_candidates(day=day)
    if not candidates:
        return []
    _, end = day_window(day)
    activity = _activity(candidates, trading_day(end - LOOKBACK), day)
    users = get_user_model().objects.filter(pk__in=candidates).order_by("pk")
    raised = []
    for user in users.iterator(chunk_size=500):
        window = client_window(user=user, day=day, activity=activity.get(user.pk, []))
        raised += aml_evaluate(window=window)
    logger.info("analytics AML for %s: %s clients, %s alerts raised", day, len(candidates), len(raised))
    return raised
