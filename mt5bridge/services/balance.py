"""Balance operations on MT5, exactly once.

The protocol, per operation:

1. `balance_operation_create` records it (`pending`) in the caller's transaction; the send is scheduled after commit.
2. `balance_operation_send` claims it under a row lock (`pending -> sent`, one worker wins), commits, and only then
   calls MT5 with the operation's reference in the deal comment.
   - a ticket comes back: `sent -> confirmed`;
   - MT5 refuses for good (no money, bad parameters): `sent -> failed`;
   - the request provably never arrived (connection refused, breaker open): `sent -> pending`, sent again later;
   - anything else (timeout, connection lost, 5xx): `sent -> unknown`.
3. `balance_operation_resolve` never resends an `unknown` operation blindly: after a grace period it searches the
   account's deals for the comment. Found: `confirmed` with that ticket. Not found: `pending` again, and only then
   is it sent again.

Two workers cannot send the same operation: the claim is a compare-and-set on the state under `select_for_update`.

Inside a task body marked with `core.tasks.follow_up_here()` (the webhook task that credits a deposit) steps 1 and 2
fold together: the operation is created already claimed (`sent`, attempt 1) in the caller's transaction, and the same
worker calls MT5 once that transaction has committed, with no send task in between. Recovery is unchanged: a worker
that dies between the commit and the call leaves a `sent` operation that the sweeper marks `unknown` and settles by
looking for its deal; a request that provably never reached MT5 goes back to `pending` and to the send task.
"""

from __future__ import annotations

import logging
import secrets
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core.db import insert_unless_taken
from core.errors import ApplicationError, RetryableError
from core.fsm import apply_transition
from core.money import quantize
from core.tasks import may_follow_up_here
from mt5bridge.manager_api import (
    COMMENT_MAX_LENGTH,
    BalanceKind,
    Deal,
    MT5AmbiguousError,
    MT5RetryableError,
    MT5TerminalError,
)
from mt5bridge.models import BalanceOperation, TradingAccount
from mt5bridge.servers import server_call

logger = logging.getLogger(__name__)

_RESEND_AFTER_SECONDS = 2  # the first retry of a send that did not reach MT5; the task backs off from there
_REFERENCE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: staff read these aloud


def _new_reference() -> str:
    return "".join(secrets.choice(_REFERENCE_ALPHABET) for _ in range(10))


def balance_operation_create(
    *,
    account: TradingAccount,
    amount: Decimal | str,
    idempotency_key: str,
    kind: BalanceKind = BalanceKind.BALANCE,
    label: str = "CRM",
    requested_by=None,
) -> BalanceOperation:
    """Record a balance operation and schedule its send after the caller's transaction commits.

    Idempotent on `idempotency_key`: a repeat returns the first operation, provided it asks for the same thing
    (a key reused for another amount or account is an error, not a silent no-op). Validates before recording:
    an open account, a non-zero amount within MT5_MAX_BALANCE_OPERATION, a comment MT5 accepts.
    """
    value = quantize(amount, account.currency)
    if value == 0:
        raise ApplicationError("A balance operation needs a non-zero amount.")
    if abs(value) > settings.MT5_MAX_BALANCE_OPERATION:
        raise ApplicationError(f"{abs(value)} is over the limit of {settings.MT5_MAX_BALANCE_OPERATION} per operation.")
    if account.state != TradingAccount.State.PROVISIONED:
        raise ApplicationError(f"Account {account.login} is not open.")
    reference = _new_reference()
    comment = f"{label} #{reference}"
    if len(comment) > COMMENT_MAX_LENGTH:
        raise ApplicationError(
            f"The label {label!r} makes the MT5 comment longer than {COMMENT_MAX_LENGTH} characters."
        )
    operation = BalanceOperation(
        idempotency_key=idempotency_key,
        reference=reference,
        server_id=account.server_id,
        account=account,
        kind=int(kind),
        amount=value,
        comment=comment,
        requested_by=requested_by,
    )
    if not insert_unless_taken(operation, unique=("idempotency_key",)):  # a repeat (or a concurrent twin)
        operation = BalanceOperation.objects.get(idempotency_key=idempotency_key)
        if (operation.account_id, operation.amount, operation.kind) != (account.pk, value, int(kind)):
            raise ApplicationError(
                "This idempotency key was already used for a different operation.", code="idempotency_conflict"
            )
        return operation
    if may_follow_up_here() and transaction.get_connection().in_atomic_block:
        operation.server = account.server  # loaded with the account by the callers that take this path
        _claim(operation)
        transaction.on_commit(lambda: _send_claimed(operation))
    else:
        _schedule_send(operation.pk)
    return operation


def _send_claimed(operation: BalanceOperation) -> None:
    """After the creating transaction committed: call MT5 for an operation claimed in it (see the module docstring)."""
    try:
        operation = _deliver(operation)
    except RetryableError as exc:  # provably not applied and `pending` again: the send task retries with backoff
        logger.warning("operation %s not sent (%s); the send task retries it", operation.reference, exc)
        _schedule_send(operation.pk, countdown=_RESEND_AFTER_SECONDS)
        return
    except Exception:  # the sweeper settles a `sent` operation whose outcome was not recorded (module docstring)
        logger.exception("operation %s: sending failed; left to the sweeper", operation.reference)
        return
    from mt5bridge.tasks import balance_operation_sent

    balance_operation_sent(operation)


def _schedule_send(operation_id: int, countdown: float | None = None) -> None:
    from mt5bridge.tasks import balance_operation_send as task

    transaction.on_commit(lambda: task.apply_async((operation_id,), countdown=countdown))


def _schedule_resolve(operation_id: int) -> None:
    from mt5bridge.tasks import balance_operation_resolve as task

    transaction.on_commit(lambda: task.apply_async((operation_id,), countdown=settings.MT5_UNKNOWN_GRACE_SECONDS))


def _finish(
    operation_id: int, transition: str, *, ticket: int | None = None, error: str = "", not_sent: bool = False
) -> BalanceOperation:
    """Record the outcome of a send. The row is re-read under lock: another actor may have moved it meanwhile.

    `not_sent` gives the attempt back: a request that provably never reached MT5 (refused connection, open breaker)
    must not use up the operation's attempts, or a few minutes of outage would fail money movements for good.
    """
    with transaction.atomic():
        operation = BalanceOperation.objects.select_for_update().get(pk=operation_id)
        if operation.state not in (BalanceOperation.State.SENT, BalanceOperation.State.UNKNOWN):
            logger.warning("operation %s is %s; outcome %s ignored", operation.reference, operation.state, transition)
            return operation
        if not_sent:
            operation.attempts = max(operation.attempts - 1, 0)
        if ticket is not None:
            operation.ticket = ticket
        if error:
            operation.last_error = error[:2000]
        if transition in ("confirm", "fail"):
            operation.resolved_at = timezone.now()
        apply_transition(operation, transition, description=error or (f"ticket {ticket}" if ticket else ""))
        operation.save()
        if transition == "mark_unknown":
            _schedule_resolve(operation.pk)
    return operation


def _claim(operation: BalanceOperation) -> bool:
    """`pending -> sent` (one more attempt) on a row the caller has locked or has just created; False when there is
    nothing to send: not `pending`, or out of attempts (then `failed`)."""
    if operation.state != BalanceOperation.State.PENDING:
        return False
    if operation.attempts >= settings.MT5_MAX_SEND_ATTEMPTS:
        operation.resolved_at = timezone.now()
        apply_transition(operation, "fail", description=f"gave up after {operation.attempts} attempts")
        operation.save()
        return False
    operation.attempts += 1
    operation.sent_at = timezone.now()
    apply_transition(operation, "mark_sent", description=f"attempt {operation.attempts}")
    operation.save(update_fields=["state", "attempts", "sent_at", "updated_at"])
    return True


def _deliver(operation: BalanceOperation) -> BalanceOperation:
    """Call MT5 for an operation this process claimed (and committed as `sent`), then record the outcome."""
    login, amount, kind, comment = operation.account.login, operation.amount, operation.kind, operation.comment
    try:
        ticket = server_call(operation.server, lambda m: m.dealer_balance(login, amount, BalanceKind(kind), comment))
    except MT5AmbiguousError as exc:
        return _finish(operation.pk, "mark_unknown", error=str(exc))
    except MT5RetryableError as exc:
        _finish(operation.pk, "requeue", error=str(exc), not_sent=True)
        raise RetryableError(f"{operation.reference}: {exc}") from exc
    except MT5TerminalError as exc:
        return _finish(operation.pk, "fail", error=str(exc))
    return _finish(operation.pk, "confirm", ticket=ticket)


def balance_operation_send(*, operation_id: int) -> BalanceOperation:
    """Send a pending operation to MT5 once (see the module docstring). Safe to call any number of times.

    Raises `RetryableError` when the request provably did not arrive, so the calling task retries with backoff.
    """
    with transaction.atomic():
        operation = (
            BalanceOperation.objects.select_for_update(of=("self",))
            .select_related("account", "server")
            .get(pk=operation_id)
        )
        if not _claim(operation):
            return operation
    return _deliver(operation)


def _deals_with_comment(operation: BalanceOperation) -> list[Deal]:
    """Every deal on the account carrying the operation's comment, searched around the time it was sent."""
    sent_at = operation.sent_at or operation.created_at
    # A wide window: MT5 servers keep their own clock and time zone (often EET), and a lost reply may be old.
    date_from, date_to = sent_at - timedelta(days=1), timezone.now() + timedelta(days=1)
    login, comment = operation.account.login, operation.comment

    def search(manager) -> list[Deal]:
        found: list[Deal] = []
        after = 0
        while True:
            page = manager.deals_page(login=login, date_from=date_from, date_to=date_to, after_ticket=after)
            found += [deal for deal in page if deal.comment == comment]
            if len(page) < 100:
                return found
            if page[-1].ticket <= after:
                raise MT5TerminalError("The trade server ignored the ticket cursor; deal lookup cannot page.")
            after = page[-1].ticket

    return server_call(operation.server, search)


def balance_operation_resolve(*, operation_id: int) -> BalanceOperation:
    """Settle an operation whose reply was lost by looking for its deal; never resends without that proof.

    Raises `RetryableError` while it is too early to decide or MT5 cannot be asked (the task retries).
    """
    operation = BalanceOperation.objects.select_related("account", "server").get(pk=operation_id)
    if operation.state != BalanceOperation.State.UNKNOWN:
        return operation
    # The lookup runs without a lock; its verdict counts only for the attempt it looked at (a duplicate resolver
    # that looked before a resend must not requeue the resend).
    looked_at = (operation.attempts, operation.sent_at)
    age = (timezone.now() - (operation.sent_at or operation.created_at)).total_seconds()
    if age < settings.MT5_UNKNOWN_GRACE_SECONDS:
        raise RetryableError(f"{operation.reference}: waiting {settings.MT5_UNKNOWN_GRACE_SECONDS} s before looking")
    try:
        deals = _deals_with_comment(operation)
    except MT5TerminalError as exc:
        raise RetryableError(f"{operation.reference}: lookup refused: {exc}") from exc
    if len(deals) > 1:
        logger.error("operation %s has %d deals with its comment", operation.reference, len(deals))
    with transaction.atomic():
        operation = BalanceOperation.objects.select_for_update().get(pk=operation.pk)
        if operation.state != BalanceOperation.State.UNKNOWN or (operation.attempts, operation.sent_at) != looked_at:
            return operation
        if deals:
            operation.ticket = deals[0].ticket
            operation.resolved_at = timezone.now()
            apply_transition(operation, "confirm", description=f"deal {deals[0].ticket} found by its comment")
        else:
            apply_transition(operation, "requeue", description="no deal carries the comment: it was not applied")
            _schedule_send(operation.pk)
        operation.save()
    return operation


def balance_operations_resolve_stuck() -> dict[str, int]:
    """The sweeper: re-drive operations whose task was lost or whose worker died mid-call. Safe to run any time.

    - `pending` for over a minute: its task message was lost; schedule a send.
    - `sent` for longer than any reply can take: the worker died; mark `unknown` and look the deal up.
    - `unknown` past the grace period: look the deal up.
    """
    now = timezone.now()
    counts = {"pending": 0, "sent": 0, "unknown": 0}
    stale_pending = BalanceOperation.objects.filter(
        state=BalanceOperation.State.PENDING, updated_at__lt=now - timedelta(seconds=60)
    ).values_list("pk", flat=True)
    for pk in stale_pending:
        with transaction.atomic():
            _schedule_send(pk)
        counts["pending"] += 1
    # Only once the send task's hard time limit has certainly killed any call still in flight.
    sent_limit = now - timedelta(seconds=settings.MT5_SEND_TIME_LIMIT + settings.MT5_UNKNOWN_GRACE_SECONDS)
    for pk in BalanceOperation.objects.filter(state=BalanceOperation.State.SENT, sent_at__lt=sent_limit).values_list(
        "pk", flat=True
    ):
        with transaction.atomic():
            operation = BalanceOperation.objects.select_for_update().get(pk=pk)
            if operation.state == BalanceOperation.State.SENT and operation.sent_at < sent_limit:
                apply_transition(operation, "mark_unknown", description="no outcome recorded: worker lost mid-call")
                operation.save()
                _schedule_resolve(pk)
                counts["sent"] += 1
    unknown = BalanceOperation.objects.filter(
        state=BalanceOperation.State.UNKNOWN,
        updated_at__lt=now - timedelta(seconds=settings.MT5_UNKNOWN_GRACE_SECONDS),
    ).values_list("pk", flat=True)
    for pk in unknown:
        with transaction.atomic():
            _schedule_resolve(pk)
        counts["unknown"] += 1
    return counts
