"""State machines that leave a trail: every transition is written to django-fsm-log's StateLog with who and why."""

from __future__ import annotations

from collections.abc import Callable

from django_fsm import TransitionNotAllowed, transition
from django_fsm_log.decorators import fsm_log_by, fsm_log_description

from core.errors import ApplicationError


def logged_transition(**transition_kwargs) -> Callable:
    """`@transition` whose calls accept `by=<user>` and `description=<why>` and are logged with them.

    The decorated method should take `(self, by=None, description=None)` and do nothing else: services lock the
    row, call the transition, save, and schedule side effects.
    """

    def decorate(method: Callable) -> Callable:
        return fsm_log_by(fsm_log_description(transition(**transition_kwargs)(method)))

    return decorate


def apply_transition(instance, name: str, *, by=None, description: str = "") -> None:
    """Run a transition by name, turning "not allowed from this state" into a message a person understands."""
    method = getattr(instance, name)
    try:
        method(by=by, description=description or None)
    except TransitionNotAllowed:
        label = type(instance)._meta.verbose_name
        raise ApplicationError(
            f"This {label} is {instance.get_state_display().lower()}: "
            f"“{name.replace('_', ' ')}” is not allowed from that state.",
            code="invalid_state",
        ) from None
