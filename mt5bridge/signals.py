"""Signals other apps listen to, so that `mt5bridge` never imports the apps above it (DESIGN.md, "Apps")."""

from django.dispatch import Signal

# Sent after a deal import stored new deals: `server_id`, `count`. Receivers enqueue their own work (the IB
# commission engine, for one) with `transaction.on_commit`; they must be quick and must not raise.
deals_imported = Signal()
