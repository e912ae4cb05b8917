"""The claim case state machine: accepted -> dispatched -> handled -> closed, officers only.

A dispatched case can be dispatched again (another handler); a worker's "not resolved" through the
receipt reopens a closed case to `accepted` for an officer's re-check (serving/claims/feedback.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from runtime.errors import InputError

STATES = ("accepted", "dispatched", "handled", "closed")
OPEN_STATES = ("accepted", "dispatched", "handled")
ACTIONS: dict[str, tuple[tuple[str, ...], str]] = {  # action: (from states, to state)
    "dispatch": (("accepted", "dispatched"), "dispatched"),
    "handle": (("dispatched",), "handled"),
    "close": (("handled",), "closed"),
}
ENTERPRISE_HANDLER = "enterprise_union"  # dispatched to it, the case becomes visible to the enterprise's key


@dataclass(frozen=True)
class Viewer:
    """Officers see every case with its claimants; an enterprise key only its own cases once they were
    dispatched to the enterprise union, without claimant data; intake and informant keys only file."""

    actor: str
    enterprise_id: str | None = None

    @property
    def is_officer(self) -> bool:
        return self.enterprise_id is None


def wrong_state(action: str, state: str) -> InputError:
    sources, _ = ACTIONS[action]
    possible = [name for name, (froms, _) in ACTIONS.items() if state in froms]
    hint = f"from `{state}` you can {', '.join(possible)}" if possible else f"`{state}` is final"
    return InputError(
        "action",
        f"the case is `{state}`; `{action}` needs state {' or '.join(f'`{s}`' for s in sources)} ({hint})",
        status_code=409,
        state=state,
    )
