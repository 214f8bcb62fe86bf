# Deposits to trading accounts need the mock trade server and its records, as the MT5 tests do.
from tests.mt5bridge.conftest import _fresh_adapters, live_server_mt5, mt5_mock  # noqa: F401
