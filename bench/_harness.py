"""Shared plumbing for the benchmarks: a throwaway database, Django set up, the mock trade server as a process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
MANAGER_PASSWORD = "Manager#2024"


def setup_django(label: str) -> Path:
    """Point Django at a fresh SQLite file (or at DATABASE_URL when set) and migrate it."""
    sys.path.insert(0, str(ROOT))
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-{label}-"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "brokerage.settings")
    os.environ["VAR_DIR"] = str(workdir)
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ["MT5_BENCH_PASSWORD"] = MANAGER_PASSWORD
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return workdir


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_mock(data: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "mt5bridge.mock_server", "--port", str(port), "--data", str(data), "--no-simulate",
         "--log-level", "WARNING", "--session-timeout", "3600"],
        cwd=ROOT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            if requests.get(f"{url}/_mock/health", timeout=1).ok:
                return process, url
        except requests.ConnectionError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("mock trade server did not start")


def emit(figures: dict) -> None:
    """The last line of every benchmark: its figures as one JSON object."""
    print(json.dumps(figures))
