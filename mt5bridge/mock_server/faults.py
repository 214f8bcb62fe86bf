"""Runtime fault injection: make the mock misbehave the way a real trade server and network do.

A fault plan is drawn per eligible request from a dedicated seeded RNG with ONE uniform draw, split into
bands by the configured ratios (so the ratios are exact probabilities and must add up to at most 1):

* ``refuse``: close the connection without answering, before anything happens;
* ``drop_session``: forget the caller's session; this request (and the next) is "not authorised", nothing
  is applied, the client must log in again;
* ``http_5xx``: answer HTTP 503, nothing applied;
* ``retcode``: answer the configured MT5 retcode (``"9 Timeout"`` by default), nothing applied;
* ``lost_response``: APPLY and commit the operation, then close the connection without answering: the
  client sees a connection error although the server did the work (the case exactly-once must survive).

``latency_ms`` delays every eligible request. Eligible are all ``/api/*`` paths except the auth handshake,
or, when ``paths`` is given, the paths matching one of its ``fnmatch`` patterns (``/api/trade/*``).
``max_faults`` optionally stops injecting after that many faults, for deterministic "fail once" tests.
"""

from __future__ import annotations

import enum
import fnmatch
import random
import re
import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any


class FaultKind(enum.StrEnum):
    REFUSE = "refuse"
    DROP_SESSION = "drop_session"
    HTTP_5XX = "http_5xx"
    RETCODE = "retcode"
    LOST_RESPONSE = "lost_response"


_RETCODE_SHAPE = re.compile(r"^\d+ \S.*$")
_MAX_LATENCY_MS = 60_000


@dataclass(frozen=True)
class FaultSettings:
    """What to inject; the JSON body of ``POST /_mock/faults`` maps onto these fields one to one."""

    latency_ms: int = 0
    refuse_ratio: float = 0.0
    drop_session_ratio: float = 0.0
    http_5xx_ratio: float = 0.0
    retcode_ratio: float = 0.0
    retcode: str = "9 Timeout"
    lost_response_ratio: float = 0.0
    paths: tuple[str, ...] = ()
    max_faults: int | None = None

    @classmethod
    def from_json(cls, payload: Mapping[str, Any]) -> FaultSettings:
        """Validate a JSON object; fields left out take their defaults. Raises ``ValueError``."""
        known = {f.name for f in fields(cls)}
        unknown = set(payload) - known
        if unknown:
            raise ValueError(f"unknown fault settings: {sorted(unknown)}")
        values = dict(payload)
        latency = values.get("latency_ms", 0)
        if not isinstance(latency, int) or isinstance(latency, bool) or not 0 <= latency <= _MAX_LATENCY_MS:
            raise ValueError(f"latency_ms must be an integer from 0 to {_MAX_LATENCY_MS}")
        for kind in FaultKind:
            ratio = values.get(f"{kind}_ratio", 0.0)
            if not isinstance(ratio, int | float) or isinstance(ratio, bool) or not 0.0 <= ratio <= 1.0:
                raise ValueError(f"{kind}_ratio must be a number from 0 to 1")
            values[f"{kind}_ratio"] = float(ratio)
        if sum(values[f"{kind}_ratio"] for kind in FaultKind) > 1.0 + 1e-9:
            raise ValueError("the fault ratios add up to more than 1")
        retcode = values.get("retcode", cls.retcode)
        if not isinstance(retcode, str) or not _RETCODE_SHAPE.match(retcode):
            raise ValueError('retcode must look like "9 Timeout"')
        paths = values.get("paths") or ()
        if not isinstance(paths, list | tuple) or not all(isinstance(p, str) and p.startswith("/") for p in paths):
            raise ValueError("paths must be a list of path patterns starting with /")
        values["paths"] = tuple(paths)
        max_faults = values.get("max_faults")
        if max_faults is not None and (
            not isinstance(max_faults, int) or isinstance(max_faults, bool) or max_faults < 0
        ):
            raise ValueError("max_faults must be a non-negative integer or null")
        return cls(**values)

    def applies_to(self, path: str) -> bool:
        if self.paths:
            return any(fnmatch.fnmatchcase(path, pattern) for pattern in self.paths)
        return path.startswith("/api/") and not path.startswith("/api/auth/")


@dataclass(frozen=True)
class FaultPlan:
    """What to do to one request: wait ``latency`` seconds, then inject ``kind`` (None: behave)."""

    latency: float = 0.0
    kind: FaultKind | None = None
    retcode: str = ""


NO_FAULT = FaultPlan()


class FaultInjector:
    """Thread-safe holder of the fault settings and the RNG that draws from them.

    The RNG is separate from the simulation's so turning faults on never changes simulated trading.
    """

    def __init__(self, seed: int) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(f"faults:{seed}")
        self._settings = FaultSettings()
        self._remaining: int | None = None
        self._injected: Counter[str] = Counter()

    def configure(self, settings: FaultSettings) -> None:
        """Replace the settings and restart the counts (each configuration is reported on its own)."""
        with self._lock:
            self._settings = settings
            self._remaining = settings.max_faults
            self._injected = Counter()

    def clear(self) -> None:
        self.configure(FaultSettings())

    def describe(self) -> dict[str, Any]:
        with self._lock:
            described = asdict(self._settings)
            described["paths"] = list(self._settings.paths)
            described["remaining"] = self._remaining
            described["injected"] = {kind.value: self._injected[kind] for kind in FaultKind}
            return described

    def plan(self, path: str) -> FaultPlan:
        """Draw the fault (if any) for one request to ``path``."""
        with self._lock:
            settings = self._settings
            if not settings.applies_to(path):
                return NO_FAULT
            latency = settings.latency_ms / 1000
            if self._remaining == 0:
                return FaultPlan(latency)
            draw = self._rng.random()
            edge = 0.0
            for kind in FaultKind:
                edge += getattr(settings, f"{kind}_ratio")
                if draw < edge:
                    self._injected[kind] += 1
                    if self._remaining is not None:
                        self._remaining -= 1
                    return FaultPlan(latency, kind, settings.retcode)
            return FaultPlan(latency)
