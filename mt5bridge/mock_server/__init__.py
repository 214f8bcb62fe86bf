"""A mock MetaTrader 5 trade server speaking the shape of the MT5 Web API over HTTP (standard library only).

It is a program of its own: nothing here imports Django or the rest of the project, and the CRM reaches it
only over HTTP, exactly as it would reach a real MT5 server. Run it with ``python -m mt5bridge.mock_server``.

Protocol in brief (see ``http.py`` for the routes):

* Manager login by MT5's challenge-response handshake:
  ``GET /api/auth/start?version=484&agent=WebAPI&login=<manager>&type=manager`` answers a ``srv_rand``;
  ``GET /api/auth/answer?srv_rand_answer=..&cli_rand=..`` proves both sides know the password.
  The session rides on the ``MT5SESSION`` cookie and expires when idle.
* Every ``/api/*`` answer is HTTP 200 JSON ``{"retcode": "0 Done", "answer": ...}`` or an MT5 error retcode;
  scalar values are strings, money has two decimals.
* ``/_mock/*`` routes (no session, loopback only) inject faults, drive the simulation, pin prices and
  backfill deals for tests and benchmarks.
"""

from .http import MockTradeServer, run_server

__all__ = ["MockTradeServer", "run_server"]
