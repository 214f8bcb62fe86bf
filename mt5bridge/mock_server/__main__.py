"""Command line: ``python -m mt5bridge.mock_server [--port 8447] [--data var/mt5mock.sqlite3] ...``.

Runs in the foreground until Ctrl-C or SIGTERM, then shuts down cleanly (open connections are cut, the
simulation tick in flight finishes, the database is closed).
"""

from __future__ import annotations

import argparse
import logging
import signal
from decimal import Decimal
from types import FrameType

from .http import DEFAULT_MANAGER_LOGIN, DEFAULT_MANAGER_PASSWORD, DEFAULT_PORT, run_server
from .store import DEFAULT_MONEY_LIMIT


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m mt5bridge.mock_server", description="Mock MetaTrader 5 trade server (Web API shape)."
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback only)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="0 picks a free port")
    parser.add_argument("--data", default="var/mt5mock.sqlite3", help="SQLite file holding the server state")
    parser.add_argument("--manager-login", type=int, default=DEFAULT_MANAGER_LOGIN)
    parser.add_argument("--manager-password", default=DEFAULT_MANAGER_PASSWORD)
    parser.add_argument("--seed", type=int, default=0, help="seed of the simulation and fault RNGs")
    parser.add_argument(
        "--simulate",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="tick the market in background",
    )
    parser.add_argument("--tick-seconds", type=float, default=1.0, help="seconds between simulation ticks")
    parser.add_argument("--session-timeout", type=float, default=180.0, help="idle seconds before a session ends")
    parser.add_argument(
        "--money-limit", type=Decimal, default=DEFAULT_MONEY_LIMIT, help="largest single balance operation"
    )
    parser.add_argument(
        "--time-offset", type=int, default=0, help="server time zone offset from UTC in seconds (EET: 7200)"
    )
    parser.add_argument(
        "--allow-remote-control", action="store_true", help="answer /_mock/* control routes from any address"
    )
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return parser


def _interrupt(signum: int, frame: FrameType | None) -> None:
    # SIGTERM takes the same clean path as Ctrl-C.
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    signal.signal(signal.SIGTERM, _interrupt)
    run_server(
        host=args.host,
        port=args.port,
        data_path=args.data,
        manager_login=args.manager_login,
        manager_password=args.manager_password,
        seed=args.seed,
        simulate=args.simulate,
        tick_seconds=args.tick_seconds,
        session_idle_timeout=args.session_timeout,
        money_limit=args.money_limit,
        server_time_offset=args.time_offset,
        allow_remote_control=args.allow_remote_control,
    )


if __name__ == "__main__":
    main()
