"""Chaos: a storm of 10,000 PSP webhooks - duplicated, shuffled, forged and malformed - through the real intake
view, processed by two concurrent workers on PostgreSQL. No deposit is credited twice, nothing forged is applied,
no valid event is lost, and the ledger balances."""

from __future__ import annotations

import json
import random
import threading
import time
from decimal import Decimal

import pytest
from django.db import connection, connections
from django.db.models import Count, Sum
from django.test import Client

from core.models import WebhookEvent, WebhookRejection
from core.webhooks import webhook_process
from payments.ledger import ledger_is_balanced
from payments.models import Deposit, LedgerAccount, LedgerEntry, LedgerTransaction
from payments.psp.sandbox import signed_headers
from tests.crm.factories import ClientFactory

pytestmark = [pytest.mark.chaos, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

VALID, DUPLICATES, FORGED, MALFORMED = 5_500, 3_000, 1_000, 500
CLIENTS = 100


def _event(deposit_ref: str, amount: str, n: int) -> bytes:
    return json.dumps({
        "id": f"evt_storm_{n}", "type": "payment.succeeded", "created": int(time.time()),
        "data": {"reference": deposit_ref, "status": "succeeded", "amount": amount, "currency": "USD",
                 "payer_name": ""},
    }).encode()  # fmt: skip


def test_webhook_storm(postgres, capsys):
    rng = random.Random(2026)
    users = [ClientFactory() for _ in range(CLIENTS)]
    deposits = Deposit.objects.bulk_create(
        Deposit(user=users[i % CLIENTS], provider="sandbox", amount=Decimal(rng.randint(1000, 500_000)) / 100,
                currency="USD", state=Deposit.State.PENDING, psp_reference=f"sbx_storm_{i}")
        for i in range(VALID + FORGED)
    )  # fmt: skip
    valid, decoys = deposits[:VALID], deposits[VALID:]

    calls: list[tuple[bytes, dict]] = []
    for n, deposit in enumerate(valid):
        body = _event(deposit.psp_reference, f"{deposit.amount:.2f}", n)
        calls.append((body, signed_headers(body)))
    calls += [rng.choice(calls[:VALID]) for _ in range(DUPLICATES)]
    for n in range(FORGED):
        # Half claim a decoy deposit was paid, half inflate a real one; all signed with a guessed secret.
        target = decoys[n] if n % 2 else valid[n]
        body = _event(target.psp_reference, "999999.00", VALID + n)
        calls.append((body, signed_headers(body, secret="guessed-secret")))
    for n in range(MALFORMED):
        body = [b"{not json", b'{"id": "x", "data": {}}', b"[]", b'{"id": 1, "created": "soon"}'][n % 4]
        calls.append((body, signed_headers(body)))
    rng.shuffle(calls)

    started = time.monotonic()
    statuses: list[int] = []

    def intake(part):
        client = Client()
        try:
            for body, headers in part:
                statuses.append(
                    client.post(
                        "/webhooks/psp/sandbox/", data=body, content_type="application/json", headers=headers
                    ).status_code
                )
        finally:
            connections.close_all()

    senders = [threading.Thread(target=intake, args=(calls[i::4],)) for i in range(4)]
    for t in senders:
        t.start()
    for t in senders:
        t.join()
    intake_seconds = time.monotonic() - started

    # Two workers race over the same inbox, each in its own order, as two Celery workers would after a redelivery.
    ids = list(WebhookEvent.objects.values_list("pk", flat=True))

    def worker(order):
        try:
            for pk in order:
                webhook_process(event_id=pk)
        finally:
            connections.close_all()

    orders = [ids, list(reversed(ids))]
    workers = [threading.Thread(target=worker, args=(order,)) for order in orders]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    elapsed = time.monotonic() - started

    credits = LedgerTransaction.objects.filter(kind="deposit").values("idempotency_key").annotate(n=Count("id"))
    double_credits = sum(1 for row in credits if row["n"] > 1)
    wallet_total = LedgerEntry.objects.filter(account__kind=LedgerAccount.Kind.CLIENT_WALLET).aggregate(
        t=Sum("amount")
    )["t"]
    expected_total = sum(d.amount for d in valid)
    forged_applied = Deposit.objects.filter(pk__in=[d.pk for d in decoys]).exclude(state=Deposit.State.PENDING).count()
    lost = Deposit.objects.filter(pk__in=[d.pk for d in valid]).exclude(state=Deposit.State.CREDITED).count()
    figures = {
        "events_sent": len(calls),
        "accepted": statuses.count(200),
        "rejected_400": statuses.count(400),
        "inbox_rows": WebhookEvent.objects.count(),
        "rejections_logged": WebhookRejection.objects.count(),
        "double_credits": double_credits,
        "forged_applied": forged_applied,
        "valid_lost": lost,
        "ledger_balanced": ledger_is_balanced(),
        "intake_s": round(intake_seconds, 1),
        "total_s": round(elapsed, 1),
    }
    with capsys.disabled():
        print(f"\nWEBHOOK STORM {figures}")

    assert connection.vendor == "postgresql"
    assert figures["rejected_400"] == FORGED + MALFORMED
    assert figures["inbox_rows"] == VALID
    assert (double_credits, forged_applied, lost) == (0, 0, 0)
    assert wallet_total == expected_total
    assert figures["ledger_balanced"]
