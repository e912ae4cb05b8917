"""Claims feed labor risk: scoring an enterprise fills the profile's claim fields (datasets/labor_risk/
schema.yaml) from its claims of the last 12 months wherever the caller left them out, so they count
in the model, its reasons and the policy floors (wage arrears of >= 10 workers, a collective
petition: tier >= 4); the photo hazards of serving/orders/risk_feed.py are filled the same way, and
high tiers open supervision cases (督办) there."""

from __future__ import annotations

from typing import Any

from serving.claims.store import ClaimStore
from serving.orders import risk_feed as orders_feed

FIELDS = (
    "complaints_12m",
    "wage_arrears_cases_12m",
    "wage_arrears_workers_12m",
    "wage_arrears_amount_12m",
    "work_injury_cases_12m",
    "collective_petition_12m",
)
SOURCE = "workers' claims of the last 12 months"


def with_claims(profiles: Any, store: ClaimStore) -> tuple[Any, dict[str, dict[str, Any]]]:
    """The profiles with the claim fields filled wherever a profile leaves them out and the enterprise
    has claims; given values are kept. Malformed input passes through for the scorer to reject."""
    if not isinstance(profiles, list):
        return profiles, {}
    keys = [key for key in map(orders_feed._enterprise_key, profiles) if key is not None]
    inputs = store.risk_inputs(keys)
    if not inputs:
        return profiles, {}
    filled, said = [], {}
    for profile in profiles:
        key = orders_feed._enterprise_key(profile)
        known = inputs.get(key or "")
        if known is None:
            filled.append(profile)
            continue
        missing = {name: known[name] for name in FIELDS if profile.get(name) is None}
        filled.append({**profile, **missing})
        said[key] = {**known, "filled": sorted(missing), "source": SOURCE}
    return filled, said


def feed_risk(profiles: Any, order_store: Any, claim_store: ClaimStore | None, score) -> list[dict[str, Any]]:
    """Score `profiles` after filling claim fields and photo hazards; each result with claims says
    `"claims": {the six fields, "filled": [the fields taken from claims], "source"}`."""
    filled, said = with_claims(profiles, claim_store) if claim_store is not None else (profiles, {})
    results = orders_feed.feed_risk(filled, order_store, score)
    for result in results:
        key = str(result["enterprise_id"])
        if key in said:
            result["claims"] = said[key]
    return results
