"""Photos feed labor risk: open photo hazards per enterprise, from the order store, go into the risk
profile (`open_photo_hazards`, `open_major_photo_hazards` in datasets/labor_risk/schema.yaml), so
they count in the model, its reasons and the policy floors; high tiers open supervision cases."""

from __future__ import annotations

from typing import Any

from runtime.errors import InputError
from serving.hostile_text import normalised_id
from serving.orders.requests import MAX_TEXT as MAX_ENTERPRISE_ID
from serving.orders.store import OrderStore

FIELDS = ("open_photo_hazards", "open_major_photo_hazards")


def _enterprise_key(profile: Any) -> str | None:
    if not isinstance(profile, dict):
        return None
    value = profile.get("enterprise_id")
    return str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) else None


def with_photo_hazards(profiles: Any, store: OrderStore) -> tuple[Any, dict[str, tuple[int, int]]]:
    """The profiles with the two fields filled from the order store wherever a profile leaves them out
    and the store knows the enterprise (it has rectification orders); given values are kept.
    Anything malformed passes through untouched, for the scorer to reject with its own message."""
    if not isinstance(profiles, list):
        return profiles, {}
    counts = store.open_photo_hazards([key for key in map(_enterprise_key, profiles) if key is not None])
    if not counts:
        return profiles, {}
    filled = []
    for profile in profiles:
        known = counts.get(_enterprise_key(profile) or "")
        if known is None:
            filled.append(profile)
            continue
        missing = {name: value for name, value in zip(FIELDS, known) if profile.get(name) is None}
        filled.append({**profile, **missing})
    return filled, counts


def annotate(
    results: list[dict[str, Any]], counts: dict[str, tuple[int, int]], supervision: dict[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    """Each result says what the order store contributed and which supervision case it has."""
    for result in results:
        key = str(result["enterprise_id"])
        if key in counts:
            result["photo_hazards"] = {
                "open": counts[key][0],
                "open_major": counts[key][1],
                "source": "rectification orders",
            }
        if key in supervision:
            result["supervision"] = supervision[key]
    return results


def refuse_long_ids(profiles: Any) -> None:
    """A supervision case stores the enterprise id in a 200-character column: a longer id is refused
    before anything is scored or written, not cut off or failed in the database."""
    for row, profile in enumerate(profiles if isinstance(profiles, list) else [], start=1):
        key = _enterprise_key(profile)
        if key is not None and len(key) > MAX_ENTERPRISE_ID:
            raise InputError(
                "enterprise_id",
                f"row {row}: enterprise_id has {len(key)} characters; at most {MAX_ENTERPRISE_ID}",
                row=row,
            )


def with_normalised_ids(profiles: Any) -> Any:
    """The profiles with each text enterprise_id normalised (NFKC, no format characters: "E100" and
    "E100" + a zero-width space are one enterprise); a control character is refused, naming the row."""
    if not isinstance(profiles, list):
        return profiles
    normalised = []
    for row, profile in enumerate(profiles, start=1):
        value = profile.get("enterprise_id") if isinstance(profile, dict) else None
        if isinstance(value, str):
            try:
                profile = {**profile, "enterprise_id": normalised_id("enterprise_id", value)}
            except InputError as error:
                raise InputError("enterprise_id", f"row {row}: {error.message}", row=row) from None
        normalised.append(profile)
    return normalised


def feed_risk(profiles: Any, store: OrderStore, score) -> list[dict[str, Any]]:
    """Score `profiles` with `score` (RiskScorer.score_profiles) after filling photo hazards, then open
    supervision cases for the enterprises at the supervision tier or above."""
    profiles = with_normalised_ids(profiles)
    refuse_long_ids(profiles)
    filled, counts = with_photo_hazards(profiles, store)
    results = score(filled)
    supervision = store.supervise_high_tiers(results)
    return annotate(results, counts, supervision)
