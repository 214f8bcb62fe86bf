"""AML alerts: raised from rule hits (`kyc.aml`), worked as cases with notes, optionally with a hold."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction

from core.errors import ApplicationError
from core.fsm import apply_transition
from kyc.models import AmlAlert, AmlAlertNote
from kyc.services.compliance import client_risk_assess, compliance_hold_place


def aml_alerts_raise(*, hits) -> list[AmlAlert]:
    """Turn rule hits into alerts, once per hit (`dedup_key` is unique): a hit raised when the event happened and
    again by the nightly run makes one alert. Returns the alerts created now."""
    created = []
    user_model = get_user_model()
    for hit in hits:
        try:
            with transaction.atomic():
                alert = AmlAlert.objects.create(
                    user=user_model.objects.get(pk=hit.client_id),
                    rule=hit.code,
                    severity=hit.severity,
                    score=hit.score,
                    summary=hit.summary,
                    evidence=hit.evidence,
                    dedup_key=hit.dedup_key,
                )
        except IntegrityError:
            continue
        created.append(alert)
        if alert.severity == "high":
            client_risk_assess(user=alert.user)
    return created


def aml_evaluate(*, window) -> list[AmlAlert]:
    """Run the configured rules over one client's facts (`kyc.aml.FactWindow`) and store new hits as alerts.

    Payments calls this as money moves (with the triggering event); analytics calls it nightly. Idempotent.
    """
    from kyc.aml import evaluate

    return aml_alerts_raise(hits=evaluate(window))


def _check(actor) -> None:
    if not actor.has_perm("kyc.change_amlalert"):
        raise ApplicationError("You may not work AML alerts.", code="permission")


def _move(alert: AmlAlert, transition: str, *, actor, reason: str) -> AmlAlert:
    _check(actor)
    if not reason.strip():
        raise ApplicationError("Give a reason; it goes on the record.")
    with transaction.atomic():
        locked = AmlAlert.objects.select_for_update().get(pk=alert.pk)
        apply_transition(locked, transition, by=actor, description=reason)
        if transition == "investigate":
            locked.assigned_to = actor
        locked.save()
    return locked


def aml_alert_investigate(*, alert: AmlAlert, actor, reason: str) -> AmlAlert:
    return _move(alert, "investigate", actor=actor, reason=reason)


def aml_alert_close(*, alert: AmlAlert, actor, reason: str) -> AmlAlert:
    return _move(alert, "close", actor=actor, reason=reason)


def aml_alert_escalate(*, alert: AmlAlert, actor, reason: str, hold_withdrawals: bool = True) -> AmlAlert:
    """Escalate to the MLRO; by default withdrawals are held until someone releases the hold. The escalation and the
    hold are one transaction: an alert is never escalated without the hold it asked for."""
    if hold_withdrawals and not actor.has_perm("kyc.add_compliancehold"):
        raise ApplicationError("You may not place compliance holds.", code="permission")
    with transaction.atomic():
        alert = _move(alert, "escalate", actor=actor, reason=reason)
        if hold_withdrawals and alert.hold_id is None:
            hold = compliance_hold_place(user=alert.user, reason=f"AML alert #{alert.pk}: {reason}", placed_by=actor)
            AmlAlert.objects.filter(pk=alert.pk).update(hold=hold)
            alert.hold = hold
    return alert


def aml_alert_add_note(*, alert: AmlAlert, author, text: str) -> AmlAlertNote:
    _check(author)
    if not text.strip():
        raise ApplicationError("A note needs text.")
    return AmlAlertNote.objects.create(alert=alert, author=author, text=text.strip())
