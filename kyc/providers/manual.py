"""Manual review: staff decide in the back-office; submitting only queues the case there."""

from __future__ import annotations


class ManualProvider:
    name = "manual"

    def case_submitted(self, *, case) -> None:
        # The review queue in the admin lists submitted cases; there is nobody else to tell.
        return None
