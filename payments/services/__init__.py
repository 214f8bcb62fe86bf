"""Payments use cases, re-exported by noun."""

from payments.services.deposits import (
    deposit_apply_psp_event,
    deposit_create,
    deposits_settle_transfers,
)

__all__ = ["deposit_apply_psp_event", "deposit_create", "deposits_settle_transfers"]
