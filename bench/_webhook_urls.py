"""URLs of the webhook bench: the project's own URLs, plus two baselines served by the same processes.

- `/_bench/bare/`: a bare JSON view, no database: what Django and gunicorn cost on their own.
- `/_bench/floor/<provider>/`: the least durable work a webhook intake can do, by hand: check the HMAC (exactly as the
  sandbox PSP's `parse_webhook` does), one raw INSERT with the event id unique, one Redis LPUSH after the commit.

Both go through the same middleware as the real intake (`/webhooks/psp/<provider>/`), so the ratios measure what the
intake's own code costs over the minimum.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import redis
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from brokerage.urls import handler400, handler403, handler404, handler500  # noqa: F401
from brokerage.urls import urlpatterns as project_urlpatterns

FLOOR_TABLE = "bench_webhook_floor"
FLOOR_INSERT = (
    "INSERT INTO bench_webhook_floor (provider, event_id, payload, received_at) VALUES (%s, %s, %s::jsonb, now()) "
    "ON CONFLICT (provider, event_id) DO NOTHING RETURNING id"
)
FLOOR_LIST = "bench:webhooks:floor"
_redis = redis.Redis.from_url(settings.CELERY_BROKER_URL) if settings.CELERY_BROKER_URL.startswith("redis") else None


@csrf_exempt
def bare(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "accepted", "size": len(request.body)})


@csrf_exempt
def floor(request: HttpRequest, provider: str) -> JsonResponse:
    if request.method != "POST":
        return JsonResponse({"error": "POST only"}, status=405)
    body = request.body
    parts = dict(p.split("=", 1) for p in request.headers.get("Sandbox-Signature", "").split(",") if "=" in p)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return JsonResponse({"error": "rejected"}, status=400)
    key = settings.SANDBOX_PSP_WEBHOOK_SECRET.encode()
    expected = hmac.new(key, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(parts.get("v1", ""), expected) or abs(time.time() - timestamp) > 300:
        return JsonResponse({"error": "rejected"}, status=400)
    try:
        event_id = str(json.loads(body)["id"])
    except (ValueError, KeyError, TypeError):
        return JsonResponse({"error": "rejected"}, status=400)
    with connection.cursor() as cursor:  # autocommit: the INSERT is committed when execute returns
        cursor.execute(FLOOR_INSERT, [provider, event_id, body.decode()])
        row = cursor.fetchone()
    if row is None:
        return JsonResponse({"status": "duplicate"})
    _redis.lpush(FLOOR_LIST, row[0])
    return JsonResponse({"status": "accepted", "id": row[0]})


FLOOR_DDL = f"""
CREATE TABLE IF NOT EXISTS {FLOOR_TABLE} (
    id bigserial PRIMARY KEY,
    provider varchar(32) NOT NULL,
    event_id varchar(200) NOT NULL,
    payload jsonb NOT NULL,
    received_at timestamptz NOT NULL,
    UNIQUE (provider, event_id)
)
"""

urlpatterns = [
    path("_bench/bare/", bare),
    path("_bench/floor/<slug:provider>/", floor),
    *project_urlpatterns,
]
