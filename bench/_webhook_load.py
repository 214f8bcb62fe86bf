"""Load generators for bench/webhooks.py: signed requests, wrk (closed loop), and a fixed-rate open-loop generator.

- Closed loop (N connections, each sends its next request as soon as the previous answer arrives): Debian's `wrk`
  with a Lua script that cycles through a file of pre-signed requests (wrk's Lua has no HMAC). When `wrk` is not
  installed, an asyncio generator does the same job (slower, so the figures are lower for every target alike).
- Open loop at a fixed rate (wrk2 is not in Debian): request i is sent at t0 + i/rate whatever happened before, and
  its latency runs from that scheduled time, so a stalled server is charged for the requests queued behind it
  (no coordinated omission).

gunicorn's sync workers close the connection after every answer, so every request opens a new TCP connection; wrk
reconnects on its own, and the Python generators do the same.
"""

from __future__ import annotations

import asyncio
import gc
import json
import math
import shutil
import statistics
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from payments.psp.sandbox import signed_headers

WRK = shutil.which("wrk")

LUA = r"""
-- Cycles through pre-signed requests (one per line: "<Sandbox-Signature>\t<body>"); every event id is unique
-- unless the file runs out, which `done` reports as "wrapped".
local requests, count, next_index, wrapped = {}, 0, 0, 0
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  for line in io.lines(args[1]) do
    local tab = line:find("\t", 1, true)
    count = count + 1
    requests[count] = wrk.format("POST", nil, {
      ["Content-Type"] = "application/json",
      ["Sandbox-Signature"] = line:sub(1, tab - 1),
    }, line:sub(tab + 1))
  end
end

function request()
  next_index = next_index + 1
  if next_index > count then
    next_index, wrapped = 1, 1
  end
  return requests[next_index]
end

function done(summary, latency, requests)
  local wraps = 0
  for _, thread in ipairs(threads) do
    wraps = wraps + (thread:get("wrapped") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "connect_errors": %d, ' ..
    '"read_errors": %d, "write_errors": %d, "status_errors": %d, "timeouts": %d, "wrapped": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect, e.read, e.write, e.status, e.timeout, wraps))
end
"""


class RequestFactory:
    """Signed sandbox-PSP events with ids unique over the whole bench run."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.serial = 0

    def body(self, *, reference: str | None = None, amount: str = "100.00", status: str = "succeeded") -> bytes:
        self.serial += 1
        reference = reference or f"sbx_nodeposit_{self.serial}"
        return json.dumps(
            {
                "id": f"evt_{self.prefix}_{self.serial}",
                "type": f"payment.{status}",
                "created": int(time.time()),
                "data": {"reference": reference, "status": status, "amount": amount, "currency": "USD",
                         "payer_name": "Bench Payer"},
            },
            separators=(",", ":"),
        ).encode()  # fmt: skip

    def signed(self, **kwargs) -> tuple[bytes, str]:
        body = self.body(**kwargs)
        return body, signed_headers(body)["Sandbox-Signature"]

    def write_file(self, path: Path, count: int) -> Path:
        """A fresh file of `count` signed requests for the Lua script (timestamps are now: tolerance is 300 s)."""
        with path.open("wb") as out:
            for _ in range(count):
                body, signature = self.signed()
                out.write(signature.encode() + b"\t" + body + b"\n")
        return path

    def raw(self, host: str, port: int, url_path: str, body: bytes, signature: str) -> bytes:
        return (
            f"POST {url_path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
            f"Sandbox-Signature: {signature}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode() + body


@dataclass
class ClosedLoopResult:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int
    wrapped: bool = False
    generator: str = "wrk"
    extra: dict = field(default_factory=dict)


def wrk_run(url: str, *, connections: int, seconds: float, request_file: Path, script: Path) -> ClosedLoopResult:
    # One wrk thread: it handles 64 connections easily and leaves the two cores to gunicorn and PostgreSQL.
    duration = f"{max(1, round(seconds))}s"
    command = [WRK, "-t", "1", "-c", str(connections), "-d", duration, "--timeout", "10s", "-s", str(script), url]
    command += ["--", str(request_file)]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    line = next(line for line in out.splitlines() if line.startswith("WRK_JSON "))
    data = json.loads(line.removeprefix("WRK_JSON "))
    errors = sum(data[k] for k in ("connect_errors", "read_errors", "write_errors", "status_errors", "timeouts"))
    return ClosedLoopResult(
        rps=data["requests"] / (data["duration_us"] / 1e6),
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        requests=data["requests"],
        errors=errors,
        wrapped=bool(data["wrapped"]),
    )


async def _exchange(host: str, port: int, payload: bytes) -> int:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(payload)
        status_line = await reader.readline()
        await reader.read()  # gunicorn's sync worker closes the connection after the answer
        return int(status_line.split()[1])
    finally:
        writer.close()


def python_closed_loop(
    host: str, port: int, url_path: str, *, connections: int, seconds: float, factory: RequestFactory
) -> ClosedLoopResult:
    """The fallback when wrk is missing: `connections` loops, each sending as soon as its previous answer came."""
    # Pre-sign enough requests so signing stays out of the timed loop.
    pool = [factory.raw(host, port, url_path, *factory.signed()) for _ in range(int(seconds * 3000))]
    latencies: list[float] = []
    errors = 0

    async def main() -> float:
        nonlocal errors
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        index = 0

        async def worker() -> None:
            nonlocal index, errors
            while loop.time() < deadline:
                payload = pool[index % len(pool)]
                index += 1
                started = loop.time()
                try:
                    status = await _exchange(host, port, payload)
                except OSError:
                    errors += 1
                    continue
                if status >= 400:
                    errors += 1
                latencies.append(loop.time() - started)

        started = loop.time()
        await asyncio.gather(*(worker() for _ in range(connections)))
        return loop.time() - started

    elapsed = asyncio.run(main())
    latencies.sort()
    return ClosedLoopResult(
        rps=len(latencies) / elapsed,
        p50_ms=percentile(latencies, 50) * 1000,
        p99_ms=percentile(latencies, 99) * 1000,
        requests=len(latencies),
        errors=errors,
        wrapped=len(latencies) > len(pool),
        generator="python-asyncio",
    )


@dataclass
class OpenLoopResult:
    rate: float
    sent: int
    latencies_s: list[float]
    statuses: list[int]
    errors: int
    sent_at_wall: list[float]  # the scheduled send time of request i, wall clock (time.time())
    late_start_ms: float  # how late the generator itself started requests, p99 (its own lag, for the record)


def open_loop(host: str, port: int, payloads: list[bytes], *, rate: float) -> OpenLoopResult:
    """Send payloads[i] at t0 + i/rate on a new connection each; latency from the scheduled time to the answer."""
    count = len(payloads)
    latencies: list[float] = [float("nan")] * count
    statuses: list[int] = [0] * count
    lags: list[float] = []
    errors = 0

    async def main() -> float:
        nonlocal errors
        loop = asyncio.get_running_loop()
        wall_offset = time.time() - loop.time()
        t0 = loop.time() + 0.05

        async def one(i: int, scheduled: float) -> None:
            nonlocal errors
            lags.append(loop.time() - scheduled)
            try:
                statuses[i] = await _exchange(host, port, payloads[i])
            except OSError:
                errors += 1
                return
            latencies[i] = loop.time() - scheduled

        tasks = []
        for i in range(count):
            scheduled = t0 + i / rate
            delay = scheduled - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i, scheduled)))
        await asyncio.gather(*tasks)
        return t0 + wall_offset

    # The generator's own garbage collection would pause its schedule (tens of ms with thousands of requests in
    # flight) and show up as the server's latency: collect before, not during.
    gc.collect()
    gc.disable()
    try:
        wall_t0 = asyncio.run(main())
    finally:
        gc.enable()
    lags.sort()
    return OpenLoopResult(
        rate=rate,
        sent=count,
        latencies_s=latencies,
        statuses=statuses,
        errors=errors,
        sent_at_wall=[wall_t0 + i / rate for i in range(count)],
        late_start_ms=percentile(lags, 99) * 1000,
    )


def percentile(values: Iterable[float], pct: float) -> float:
    """Nearest-rank percentile of the finite values (sorted or not)."""
    data = sorted(v for v in values if v == v)
    if not data:
        return float("nan")
    return data[max(1, math.ceil(pct / 100 * len(data))) - 1]


def median(values: Iterable[float]) -> float:
    return statistics.median(list(values))
