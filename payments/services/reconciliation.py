"""Reconciliation: compare our records with the PSPs' and MT5's, mend what an idempotent service can mend, and
report the rest for a person.

PSP: every deposit of a window with a PSP reference is checked against the PSP's own status. Paid at the PSP but not
credited here (our update failed after the PSP confirmed) is mended through the same `deposit_apply_psp_event` a
webhook uses, so it can never credit twice. Declined there but pending here is failed. Amount differences and
credits the PSP does not confirm are reported.

MT5: per account, the sum of confirmed balance operations is compared with the balance deals MT5 holds (imported
deals of type balance); per server, the MT5 float in the ledger with the sum of operations that moved it.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from core.db import DecimalSum
from mt5bridge.models import BalanceOperation, Deal, TradeServer
from payments.ledger import account_balance, ledger_account
from payments.models import Deposit, LedgerAccount, ReconciliationReport
from payments.psp import PspEvent, provider_for
from payments.services.deposits import deposit_apply_psp_event

logger = logging.getLogger(__name__)


def reconcile_psp(*, provider: str, since: datetime | None = None, until: datetime | None = None,
                  actor=None) -> ReconciliationReport:  # fmt: skip
    until = until or timezone.now()
    since = since or until - timedelta(days=2)
    psp = provider_for(provider)
    deposits = Deposit.objects.filter(provider=provider, created_at__range=(since, until)).exclude(psp_reference="")
    items, checked, mended = [], 0, 0
    for deposit in deposits.order_by("pk"):
        checked += 1
        try:
            theirs = psp.fetch_status(reference=deposit.psp_reference)
        except Exception as exc:  # one unreachable lookup must not stop the run; it is reported
            items.append(
                {
                    "what": "lookup failed",
                    "reference": deposit.psp_reference,
                    "deposit": deposit.pk,
                    "ours": deposit.state,
                    "theirs": type(exc).__name__,
                    "action": "retry next run",
                }
            )
            continue
        settled_here = deposit.state in (Deposit.State.CREDITED, Deposit.State.COMPLETED)
        if (theirs.amount, theirs.currency) != (deposit.amount, deposit.currency):
            items.append(
                {
                    "what": "amount mismatch",
                    "reference": deposit.psp_reference,
                    "deposit": deposit.pk,
                    "ours": f"{deposit.amount} {deposit.currency}",
                    "theirs": f"{theirs.amount} {theirs.currency}",
                    "action": "reported",
                }
            )
        elif theirs.status == "succeeded" and deposit.state == Deposit.State.PENDING:
            event = PspEvent(
                event_id=f"recon:{uuid.uuid4().hex}", event_type="reconciliation", reference=deposit.psp_reference,
                status="succeeded", amount=theirs.amount, currency=theirs.currency, payer_name="",
                occurred_at=timezone.now(), payload={},
            )  # fmt: skip
            with transaction.atomic():
                outcome = deposit_apply_psp_event(provider=provider, event=event, screen_aml=True)
            mended += outcome == "credited"
            items.append(
                {
                    "what": "paid at the PSP, not credited here",
                    "reference": deposit.psp_reference,
                    "deposit": deposit.pk,
                    "ours": "pending",
                    "theirs": "succeeded",
                    "action": outcome,
                }
            )
        elif theirs.status == "declined" and deposit.state == Deposit.State.PENDING:
            with transaction.atomic():
                outcome = deposit_apply_psp_event(provider=provider, event=PspEvent(
                    event_id=f"recon:{uuid.uuid4().hex}", event_type="reconciliation",
                    reference=deposit.psp_reference, status="declined", amount=theirs.amount,
                    currency=theirs.currency, payer_name="", occurred_at=timezone.now(), payload={}))  # fmt: skip
            mended += 1
            items.append(
                {
                    "what": "declined at the PSP, pending here",
                    "reference": deposit.psp_reference,
                    "deposit": deposit.pk,
                    "ours": "pending",
                    "theirs": "declined",
                    "action": outcome,
                }
            )
        elif settled_here and theirs.status != "succeeded":
            items.append(
                {
                    "what": "credited here, not paid at the PSP",
                    "reference": deposit.psp_reference,
                    "deposit": deposit.pk,
                    "ours": deposit.state,
                    "theirs": theirs.status,
                    "action": "reported",
                }
            )
    return ReconciliationReport.objects.create(
        kind=ReconciliationReport.Kind.PSP, scope=provider, checked=checked, mended=mended,
        discrepancies=sum(1 for i in items if i["action"] in ("reported", "retry next run")), items=items,
        created_by=actor,
    )  # fmt: skip


def reconcile_mt5(*, server: TradeServer, actor=None) -> ReconciliationReport:
    """Compare confirmed balance operations with MT5's balance deals (import deals first for a fresh picture)."""
    ours = defaultdict(Decimal)
    for login, amount in BalanceOperation.objects.filter(
        server=server, state=BalanceOperation.State.CONFIRMED, kind=2
    ).values_list("account__login", "amount"):
        ours[login] += amount
    theirs = defaultdict(Decimal)
    for row in Deal.objects.filter(server=server, action=2).values("login").annotate(total=DecimalSum("profit")):
        theirs[row["login"]] = row["total"]
    logins = sorted(set(ours) | {login for login in theirs if login in ours})
    items = [
        {"what": "balance operations differ from MT5 balance deals", "reference": str(login),
         "ours": str(ours[login]), "theirs": str(theirs.get(login, Decimal(0))), "action": "reported"}
        for login in logins
        if ours[login] != theirs.get(login, Decimal(0))
    ]  # fmt: skip
    for currency in {a.currency for a in LedgerAccount.objects.filter(kind="mt5_float", key=server.name)}:
        float_balance = account_balance(ledger_account(kind="mt5_float", currency=currency, key=server.name))
        # The float moves when money is sent to MT5 (credits, at once) and when MT5 confirms a debit.
        operations = BalanceOperation.objects.filter(server=server, account__currency=currency).exclude(
            idempotency_key__startswith="demo-initial:"
        )
        confirmed = operations.filter(state="confirmed").aggregate(t=DecimalSum("amount"))["t"] or Decimal(0)
        in_flight = operations.filter(state__in=["pending", "sent", "unknown"], amount__gt=0).aggregate(
            t=DecimalSum("amount")
        )["t"] or Decimal(0)
        moved = confirmed + in_flight
        if float_balance != moved:
            items.append({"what": "MT5 float differs from operations in flight or confirmed",
                          "reference": f"{server.name} {currency}", "ours": str(float_balance), "theirs": str(moved),
                          "action": "reported"})  # fmt: skip
    return ReconciliationReport.objects.create(
        kind=ReconciliationReport.Kind.MT5, scope=server.name, checked=len(ours), mended=0,
        discrepancies=len(items), items=items, created_by=actor,
    )  # fmt: skip
