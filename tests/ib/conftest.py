# The browser journey and the deal-import test trade on the mock trade server, like the MT5 tests.
from tests.mt5bridge.conftest import _fresh_adapters, live_server_mt5, mt5_mock  # noqa: F401
