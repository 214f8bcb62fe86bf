"""Staff dashboards and exports. Thin: parse the filters, call selectors, render. Every view asks for a permission."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import wraps

from allauth.mfa.utils import is_mfa_enabled
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone

from analytics import selectors
from analytics.forms import FilterForm, default_filters

DASHBOARD = "analytics.view_dashboard"
EXPOSURE = "analytics.view_exposure"
XLSX_MAX_ROWS = 1_048_575  # one sheet of Excel, minus the header
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PALETTE = ["#0f3d5e", "#14b8a6", "#f59e0b", "#6366f1", "#ef4444", "#22c55e", "#0ea5e9", "#a855f7", "#64748b"]


def staff_permission(permission: str) -> Callable:
    """Signed-in staff with a second factor and `permission`; others are sent to sign in or refused (403)."""

    def decorate(view: Callable) -> Callable:
        @wraps(view)
        def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            user = request.user
            if not user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if not user.is_staff:
                raise PermissionDenied("The analytics dashboards are for staff.")
            if not is_mfa_enabled(user):
                return redirect(reverse("mfa_activate_totp"))
            if not user.has_perm(permission):
                raise PermissionDenied("Your role may not see this dashboard.")
            return view(request, *args, **kwargs)

        return wrapped

    return decorate


def _filters(request: HttpRequest):
    form = FilterForm(request.GET or None)
    if not request.GET:
        return form, default_filters(), 200
    if form.is_valid():
        return form, form.filters(), 200
    return form, default_filters(), 400


def _context(request: HttpRequest, form, filters, active: str, **extra) -> dict:
    query = request.GET.urlencode()
    return {
        "form": form,
        "filters": filters,
        "choices": selectors.choices(),
        "active": active,
        "query": f"?{query}" if query else "",
        "can_see_exposure": request.user.has_perm(EXPOSURE),
        "can_see_dashboard": request.user.has_perm(DASHBOARD),
        **extra,
    }


def _chart(chart_id: str, kind: str, labels: list, datasets: list[dict], **options) -> dict:
    for position, dataset in enumerate(datasets):
        color = dataset.pop("color", PALETTE[position % len(PALETTE)])
        dataset.setdefault("backgroundColor", color)
        dataset.setdefault("borderColor", color)
    return {"id": chart_id, "type": kind, "labels": labels, "datasets": datasets, "options": options}


@staff_permission(DASHBOARD)
def overview(request: HttpRequest) -> HttpResponse:
    form, filters, status = _filters(request)
    series = selectors.daily_series(filters)
    data = selectors.chart_series(series)
    by_provider = [row for row in selectors.payments_breakdown(filters, by="provider") if row["direction"] == "deposit"]
    by_country = [row for row in selectors.payments_breakdown(filters, by="country") if row["direction"] == "deposit"]
    by_country = sorted(by_country, key=lambda row: -row["amount_ok"])[:10]
    charts = [
        _chart(
            "chart-money",
            "bar",
            data["labels"],
            [
                {"label": "Deposits", "data": data["deposits_amount"], "color": "#14b8a6"},
                {"label": "Withdrawals", "data": [-v for v in data["withdrawals_amount"]], "color": "#f59e0b"},
                {"label": "Net deposit", "data": data["net_deposit"], "type": "line", "color": "#0f3d5e"},
            ],
            stacked=True,
            money=filters.currency,
        ),
        _chart(
            "chart-trading",
            "bar",
            data["labels"],
            [
                {"label": "Lots", "data": data["lots"], "color": "#6366f1", "yAxisID": "y"},
                {
                    "label": "Active traders",
                    "data": data["active_traders"],
                    "type": "line",
                    "color": "#0ea5e9",
                    "yAxisID": "y1",
                },
            ],
            dual=True,
        ),
        _chart(
            "chart-pl",
            "line",
            data["labels"],
            [
                {"label": "Client P/L", "data": data["client_pl"], "color": "#ef4444"},
                {"label": "Broker P/L (B-book)", "data": data["broker_pl"], "color": "#22c55e"},
            ],
            money=filters.currency,
        ),
        _chart(
            "chart-providers",
            "doughnut",
            [row["key"] for row in by_provider],
            [
                {
                    "label": "Deposited",
                    "data": [float(row["amount_ok"]) for row in by_provider],
                    "backgroundColor": PALETTE[: len(by_provider)],
                    "borderColor": "#ffffff",
                }
            ],
        ),
        _chart(
            "chart-countries",
            "bar",
            [row["key"] for row in by_country],
            [{"label": "Deposited", "data": [float(row["amount_ok"]) for row in by_country], "color": "#0f3d5e"}],
            horizontal=True,
            money=filters.currency,
        ),
    ]
    context = _context(
        request,
        form,
        filters,
        "overview",
        series=list(reversed(series)),
        kpis=selectors.kpis(series),
        coverage=selectors.coverage(filters),
        charts=charts,
    )
    return render(request, "analytics/overview.html", context, status=status)


@staff_permission(DASHBOARD)
def payments(request: HttpRequest) -> HttpResponse:
    form, filters, status = _filters(request)
    by_provider = selectors.payments_breakdown(filters, by="provider")
    by_method = selectors.payments_breakdown(filters, by="method")
    by_country = selectors.payments_breakdown(filters, by="country")
    deposits = [row for row in by_provider if row["direction"] == "deposit"]
    charts = [
        _chart(
            "chart-status",
            "bar",
            [row["key"] for row in deposits],
            [
                {"label": "Succeeded", "data": [row["succeeded"] for row in deposits], "color": "#15803d"},
                {"label": "Failed", "data": [row["failed"] for row in deposits], "color": "#b91c1c"},
                {"label": "Open", "data": [row["open"] for row in deposits], "color": "#94a3b8"},
            ],
            stacked=True,
        )
    ]
    context = _context(
        request, form, filters, "payments", by_provider=by_provider, by_method=by_method, by_country=by_country,
        charts=charts,
    )  # fmt: skip
    return render(request, "analytics/payments.html", context, status=status)


@staff_permission(DASHBOARD)
def clients(request: HttpRequest) -> HttpResponse:
    form, filters, status = _filters(request)
    order = request.GET.get("order", "net_deposit")
    if order not in ("net_deposit", "lots", "client_pl", "broker_pl"):
        order, status = "net_deposit", 400
    rows = selectors.top_clients(filters, order=order, limit=50)
    context = _context(request, form, filters, "clients", rows=rows, order=order)
    return render(request, "analytics/clients.html", context, status=status)


@staff_permission(DASHBOARD)
def ibs(request: HttpRequest) -> HttpResponse:
    form, filters, status = _filters(request)
    series = selectors.ib_series(filters)
    charts = [
        _chart(
            "chart-ib",
            "bar",
            series["labels"],
            [
                {"label": "Commissions earned", "data": series["earned"], "color": "#0f3d5e", "yAxisID": "y"},
                {
                    "label": "Clients' net deposit",
                    "data": series["net"],
                    "type": "line",
                    "color": "#14b8a6",
                    "yAxisID": "y1",
                },
            ],
            dual=True,
        )
    ]
    rows = selectors.ib_performance(filters, limit=50)
    context = _context(request, form, filters, "ibs", rows=rows, charts=charts)
    return render(request, "analytics/ibs.html", context, status=status)


@staff_permission(EXPOSURE)
def exposure(request: HttpRequest) -> HttpResponse:
    form, filters, status = _filters(request)
    rows = selectors.exposure(server=filters.server)
    newest = max((row["newest"] for row in rows if row["newest"]), default=None)
    oldest = min((row["oldest"] for row in rows if row["oldest"]), default=None)
    charts = [
        _chart(
            "chart-exposure",
            "bar",
            [f"{row['symbol']} · {row['server']}" for row in rows],
            [
                {"label": "Long lots", "data": [float(row["long_lots"]) for row in rows], "color": "#15803d"},
                {"label": "Short lots", "data": [-float(row["short_lots"]) for row in rows], "color": "#b91c1c"},
                {
                    "label": "Net lots",
                    "data": [float(row["net_lots"]) for row in rows],
                    "type": "line",
                    "color": "#0f3d5e",
                },
            ],
            stacked=True,
        )
    ]
    context = _context(
        request, form, filters, "exposure", rows=rows, charts=charts, newest=newest, oldest=oldest,
        now=timezone.now(), unsized=sum(row["unsized"] for row in rows),
    )  # fmt: skip
    return render(request, "analytics/exposure.html", context, status=status)


@staff_permission(DASHBOARD)
def builds(request: HttpRequest) -> HttpResponse:
    from analytics.services import stalled_buckets

    form, filters, status = _filters(request)
    states = list(selectors.fill_states(filters)[:500])
    context = _context(
        request, form, filters, "builds", states=states, coverage=selectors.coverage(filters),
        stalled={state.pk for state in stalled_buckets()},
    )  # fmt: skip
    return render(request, "analytics/builds.html", context, status=status)


def _cell(value):
    """Plain values for CSV and Excel: Decimals stay exact (Excel gets them as numbers), times in UTC."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
    return value


class _Echo:
    def write(self, value: str) -> str:
        return value


def export(request: HttpRequest, table: str, fmt: str) -> HttpResponse:
    if table not in selectors.EXPORTS or fmt not in ("csv", "xlsx"):
        raise Http404("No such export.")
    permission = EXPOSURE if table == "exposure" else DASHBOARD
    return staff_permission(permission)(_export)(request, table, fmt)


def _export(request: HttpRequest, table: str, fmt: str) -> HttpResponse:
    form, filters, status = _filters(request)
    if status != 200:
        return HttpResponse("Bad filters: " + "; ".join(form.errors.get("__all__", []) or ["check the dates"]),
                            status=400, content_type="text/plain")  # fmt: skip
    header, rows = selectors.export_rows(table, filters)
    name = f"{table}_{filters.first.isoformat()}_{filters.last.isoformat()}_{filters.currency}"
    if fmt == "csv":
        writer = csv.writer(_Echo())

        def lines() -> Iterator[str]:
            yield writer.writerow(header)
            for row in rows:
                yield writer.writerow([_text(value) for value in row])

        response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    else:
        try:
            content = _xlsx(header, rows, title=selectors.EXPORTS[table])
        except ValueError as error:
            return HttpResponse(str(error), status=400, content_type="text/plain")
        response = HttpResponse(content, content_type=XLSX_TYPE)
    response["Content-Disposition"] = f'attachment; filename="{name}.{fmt}"'
    response["Cache-Control"] = "no-store"
    return response


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return _cell(value).isoformat(sep=" ")
    if isinstance(value, date | Decimal):
        return str(value)
    return str(value)


def _xlsx(header: list[str], rows: Iterator[list], *, title: str) -> bytes:
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title=title[:31])
    sheet.append(header)
    for count, row in enumerate(rows, start=1):
        if count > XLSX_MAX_ROWS:
            raise ValueError(
                f"More than {XLSX_MAX_ROWS:,} rows do not fit one Excel sheet: narrow the range or export CSV."
            )
        sheet.append([_cell(value) for value in row])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()
