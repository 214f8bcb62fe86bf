"""Adapters from `ManagerAPI` to real protocols, chosen per trade server by `TradeServer.adapter`."""
