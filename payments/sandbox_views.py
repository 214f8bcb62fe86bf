"""The sandbox PSP's hosted checkout page. A TEST PAGE: it stands in for a card processor's page, is marked as
such, and talks to the CRM only through its signed webhooks (sent by `payments.sandbox_deliver_webhook`)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from payments.models import SandboxPayment
from payments.tasks import sandbox_deliver_webhook

OUTCOMES = {"success", "decline", "3ds", "delayed"}
DELAY_SECONDS = 10


@require_http_methods(["GET", "POST"])
def pay(request: HttpRequest, reference: str) -> HttpResponse:
    payment = get_object_or_404(SandboxPayment, reference=reference)
    if payment.status != SandboxPayment.Status.OPEN:
        return redirect(payment.return_url)
    if request.method == "POST":
        outcome = request.POST.get("outcome")
        payment.payer_name = request.POST.get("cardholder", "").strip()[:150]
        if outcome == "3ds":
            payment.status = SandboxPayment.Status.REQUIRES_ACTION
            payment.save()
            return redirect("sandbox_psp_challenge", reference=reference)
        if outcome in ("success", "delayed"):
            payment.status = SandboxPayment.Status.SUCCEEDED
        elif outcome == "decline":
            payment.status = SandboxPayment.Status.DECLINED
        else:
            return render(request, "psp/sandbox_pay.html", {"payment": payment, "error": "Choose an outcome."})
        payment.save()
        sandbox_deliver_webhook.apply_async((reference,), countdown=DELAY_SECONDS if outcome == "delayed" else None)
        return redirect(payment.return_url)
    return render(request, "psp/sandbox_pay.html", {"payment": payment})


@require_http_methods(["GET", "POST"])
def challenge(request: HttpRequest, reference: str) -> HttpResponse:
    payment = get_object_or_404(SandboxPayment, reference=reference, status=SandboxPayment.Status.REQUIRES_ACTION)
    if request.method == "POST":
        approved = request.POST.get("result") == "authenticate"
        payment.status = SandboxPayment.Status.SUCCEEDED if approved else SandboxPayment.Status.DECLINED
        payment.save()
        sandbox_deliver_webhook.delay(reference)
        return redirect(payment.return_url)
    return render(request, "psp/sandbox_3ds.html", {"payment": payment})
