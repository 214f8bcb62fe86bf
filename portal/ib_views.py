"""IB-facing pages (`/ib/`) and the short referral link (`/r/<code>/`). Thin: every read goes through
`ib.selectors`, which scope it to the signed-in IB's own downline; every write through `ib.services`."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from functools import wraps

import segno
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core import signing
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from core.errors import ApplicationError
from ib import selectors
from ib.models import IntroducingBroker, ReferralLink
from ib.services import ib_apply, referral_click_record, referral_link_create
from portal.ib_forms import ApplyForm, LinkForm, StatementFilterForm

COOKIE_SALT = "ib.referral"


def ib_required(view):
    """Signed-in users with an approved (or suspended: read-only) IB record; others go to the application."""

    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        ib = selectors.ib_for_user(user=request.user)
        if ib is None or ib.state not in (IntroducingBroker.State.APPROVED, IntroducingBroker.State.SUSPENDED):
            return redirect("ib:apply")
        request.ib = ib
        return view(request, *args, **kwargs)

    return wrapper


def _link_url(request: HttpRequest, link: ReferralLink) -> str:
    return request.build_absolute_uri(reverse("referral_link", args=[link.code]))


@ib_required
def dashboard(request: HttpRequest) -> HttpResponse:
    ib = request.ib
    links = list(selectors.ib_links(ib=ib))
    for link in links:
        link.url = _link_url(request, link)
    funnel = selectors.ib_funnel(ib=ib).steps()
    rows = list(selectors.ib_statement(ib=ib)[:8])
    for row in rows:
        row.explanation = selectors.explain(row)
        row.client_label = selectors.client_label(row, viewer=ib)
    return render(
        request,
        "ib/dashboard.html",
        {
            "ib": ib,
            "totals": selectors.ib_totals(ib=ib, since=timezone.now() - timedelta(days=30)),
            "funnel": funnel,
            "funnel_max": max(value for _label, value, _pct in funnel) or 1,
            "links": links,
            "link_form": LinkForm(),
            "clients": selectors.ib_direct_clients(ib=ib, limit=50),
            "tree": selectors.ib_tree(ib=ib),
            "series": selectors.ib_daily_series(ib=ib, days=30),
            "rows": rows,
            "payouts": list(selectors.ib_payouts(ib=ib)[:5]),
        },
    )


@login_required
def apply(request: HttpRequest) -> HttpResponse:
    existing = selectors.ib_for_user(user=request.user)
    if existing is not None and existing.state in (IntroducingBroker.State.APPROVED, IntroducingBroker.State.SUSPENDED):
        return redirect("ib:dashboard")
    form = ApplyForm(request.POST or None, user=request.user)
    if request.method == "POST" and existing is None and form.is_valid():
        try:
            ib_apply(
                user=request.user,
                parent_code=form.cleaned_data["introduced_by"],
                note=form.cleaned_data["note"],
            )
        except ApplicationError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, "Thank you: your application was sent. Our IB team will review it.")
            return redirect("ib:apply")
    return render(request, "ib/apply.html", {"form": form, "application": existing})


@require_POST
@ib_required
def link_create(request: HttpRequest) -> HttpResponse:
    form = LinkForm(request.POST)
    if form.is_valid():
        try:
            link = referral_link_create(ib=request.ib, campaign=form.cleaned_data["campaign"])
        except ApplicationError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, f"Link for “{link.campaign}” created.")
    else:
        messages.error(request, " ".join(e for errors in form.errors.values() for e in errors))
    return redirect(reverse("ib:dashboard") + "#links")


@ib_required
def link_qr(request: HttpRequest, link_id: int) -> HttpResponse:
    link = ReferralLink.objects.filter(pk=link_id, ib=request.ib).first()
    if link is None:
        raise Http404("No such link.")
    buffer = io.BytesIO()
    segno.make(_link_url(request, link), error="m").save(buffer, kind="svg", scale=4, dark="#0f172a", light="#fff")
    response = HttpResponse(buffer.getvalue(), content_type="image/svg+xml")
    response["Cache-Control"] = "private, max-age=3600"
    return response


def _filtered_statement(request: HttpRequest):
    form = StatementFilterForm(request.GET or None, months=selectors.ib_statement_months(ib=request.ib))
    month = client = None
    if form.is_valid():
        month = form.cleaned_data.get("month") or None
        client = form.cleaned_data.get("client") or None
    return form, selectors.ib_statement(ib=request.ib, month=month, client_id=client)


@ib_required
def statement(request: HttpRequest) -> HttpResponse:
    form, rows = _filtered_statement(request)
    page = Paginator(rows, 50).get_page(request.GET.get("page"))
    for row in page.object_list:
        row.explanation = selectors.explain(row)
        row.client_label = selectors.client_label(row, viewer=request.ib)
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request, "ib/statement.html", {"ib": request.ib, "form": form, "page": page, "query": query.urlencode()}
    )


def _blank(value) -> object:
    return "" if value is None else value


class _Echo:
    def write(self, value: str) -> str:
        return value


@ib_required
def statement_csv(request: HttpRequest) -> StreamingHttpResponse:
    _form, rows = _filtered_statement(request)
    ib = request.ib
    writer = csv.writer(_Echo())

    def lines():
        yield writer.writerow(
            [
                "time",
                "kind",
                "status",
                "deal",
                "opening_deal",
                "symbol",
                "lots",
                "hold_seconds",
                "level",
                "client",
                "via_ib",
                "rule_rate",
                "best_below",
                "rate",
                "base",
                "amount",
                "currency",
                "payout",
                "explanation",
            ]
        )
        for row in rows.iterator(chunk_size=2000):  # lines derived in chunks, never the whole statement at once
            yield writer.writerow(
                [
                    row.deal_time.isoformat(),
                    row.kind,
                    row.status,
                    row.deal_id or "",
                    row.open_deal_id or "",
                    row.symbol,
                    row.lots,
                    "" if row.hold_seconds is None else row.hold_seconds,
                    row.level,
                    selectors.client_label(row, viewer=ib),
                    row.direct_ib.referral_code if row.direct_ib_id else "",
                    _blank(row.rule_rate),
                    _blank(row.best_below),
                    _blank(row.rate),
                    _blank(row.base),
                    row.amount,
                    row.currency,
                    row.payout_id or "",
                    selectors.explain(row),
                ]
            )

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="ib-statement-{ib.referral_code}.csv"'
    return response


@ib_required
def sub_ib(request: HttpRequest, sub_ib_id: int) -> HttpResponse:
    sub = selectors.ib_sub_ib(ib=request.ib, sub_ib_id=sub_ib_id)
    if sub is None:
        raise Http404("No such sub-IB in your network.")
    tree = selectors.ib_tree(ib=request.ib)
    node = _find(tree, sub.pk)
    return render(
        request,
        "ib/sub_ib.html",
        {"ib": request.ib, "sub": sub, "node": node, "sub_email": selectors.mask_email(sub.user.email)},
    )


def _find(node, ib_id: int):
    if node.ib_id == ib_id:
        return node
    for child in node.children:
        found = _find(child, ib_id)
        if found is not None:
            return found
    return None


@ib_required
def payouts(request: HttpRequest) -> HttpResponse:
    page = Paginator(selectors.ib_payouts(ib=request.ib), 50).get_page(request.GET.get("page"))
    return render(request, "ib/payouts.html", {"ib": request.ib, "page": page})


def referral_link(request: HttpRequest, code: str) -> HttpResponse:
    """`/r/<code>/`: count the click, remember the first touch in a signed cookie, go to the landing page."""
    try:
        click = referral_click_record(
            code=code,
            ip=request.META.get("REMOTE_ADDR"),
            user_agent=request.META.get("HTTP_USER_AGENT", ""),
            params=request.GET,
            referer=request.META.get("HTTP_REFERER", ""),
        )
    except ApplicationError as exc:
        return render(request, "ib/link_invalid.html", {"message": exc.message}, status=404)
    response = redirect(click.landing_page or "/accounts/signup/")
    window = settings.IB_ATTRIBUTION_WINDOW_DAYS * 86400
    try:
        existing = request.get_signed_cookie(
            settings.IB_REFERRAL_COOKIE, default=None, salt=COOKIE_SALT, max_age=window
        )
    except signing.BadSignature:
        existing = None
    if existing is None:  # first touch wins: a later click never replaces a live cookie
        response.set_signed_cookie(
            settings.IB_REFERRAL_COOKIE,
            str(click.pk),
            salt=COOKIE_SALT,
            max_age=window,
            httponly=True,
            samesite="Lax",
            secure=request.is_secure(),
        )
    return response
