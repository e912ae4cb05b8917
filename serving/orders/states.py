"""The order state machine: which action moves an order from which state, and who may take it.

open -> in_progress -> submitted (with a proof photo for rectification orders) -> verified
(or rejected: back to in_progress) -> closed. Supervision cases (督办) use the same machine; their
submission is a written report, a photo is optional.
"""

from __future__ import annotations

from dataclasses import dataclass

from runtime.errors import InputError

STATES = ("open", "in_progress", "submitted", "verified", "closed")
ACTIONS: dict[str, tuple[str, str]] = {  # action: (from state, to state)
    "start": ("open", "in_progress"),
    "submit": ("in_progress", "submitted"),
    "verify": ("submitted", "verified"),
    "reject": ("submitted", "in_progress"),
    "close": ("verified", "closed"),
}
ENTERPRISE_ACTIONS = frozenset({"start", "submit"})  # the enterprise answers; officers verify and close
RECTIFIED_STATES = ("verified", "closed")
UNRECTIFIED_STATES = ("open", "in_progress", "submitted")
KINDS = ("rectification", "supervision")


@dataclass(frozen=True)
class Viewer:
    """Who is asking: an officer (reviewer or admin key) sees every order; an enterprise key only its own."""

    actor: str
    enterprise_id: str | None = None

    @property
    def is_officer(self) -> bool:
        return self.enterprise_id is None


def check_action(action: object, *, viewer: Viewer) -> tuple[str, str]:
    """(from state, to state) of a known action the viewer may take; InputError otherwise."""
    if action not in ACTIONS:
        raise InputError("action", f"unknown action {action!r}; use one of {list(ACTIONS)}")
    if not viewer.is_officer and action not in ENTERPRISE_ACTIONS:
        raise InputError(
            "action",
            f"an enterprise key may only {' or '.join(sorted(ENTERPRISE_ACTIONS))} "
            f"its orders; `{action}` is for union officers",
            status_code=403,
        )
    return ACTIONS[action]


def wrong_state(action: str, state: str) -> InputError:
    """409 naming the order's state and the state the action needs."""
    needed = ACTIONS[action][0]
    possible = [name for name, (source, _) in ACTIONS.items() if source == state]
    hint = f"from `{state}` you can {', '.join(possible)}" if possible else f"`{state}` is final"
    return InputError(
        "action", f"the order is `{state}`; `{action}` needs state `{needed}` ({hint})", status_code=409, state=state
    )
