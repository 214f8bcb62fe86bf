"""Payments use cases, re-exported by noun."""

from payments.services.deposits import deposit_apply_psp_event, deposit_create, deposits_settle_transfers
from payments.services.reversals import deposit_reinstate, deposit_reversals_settle, deposit_reverse
from payments.services.transfers import transfer_create, transfers_settle
from payments.services.withdrawals import (
    withdrawal_approve,
    withdrawal_cancel,
    withdrawal_confirm_sent,
    withdrawal_pay_out,
    withdrawal_reject,
    withdrawal_request,
)

__all__ = [
    "deposit_apply_psp_event",
    "deposit_create",
    "deposit_reinstate",
    "deposit_reversals_settle",
    "deposit_reverse",
    "deposits_settle_transfers",
    "transfer_create",
    "transfers_settle",
    "withdrawal_approve",
    "withdrawal_cancel",
    "withdrawal_confirm_sent",
    "withdrawal_pay_out",
    "withdrawal_reject",
    "withdrawal_request",
]
