"""Schemathesis against the service's own OpenAPI document (/docs.json), in process.

Every operation in the document gets generated requests (valid and, through the schema's
negative mode, invalid ones); the service must never answer 5xx and documented responses must
match their schemas. The examples run per operation are bounded so the test stays well under 60 s.
(`schemathesis.pytest.from_fixture` does not run under this pytest, hence the explicit loop.)
"""

from __future__ import annotations

from collections import Counter

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

EXAMPLES_PER_OPERATION = 60
CHECKS = [not_a_server_error, response_schema_conformance]
# /metrics needs the served process's Prometheus directory; test_server_e2e.py covers it over HTTP.
IN_PROCESS_SKIP = {"GET /metrics"}


def fuzz_operation(operation, counts: Counter) -> None:
    @given(case=operation.as_strategy())
    @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def run(case) -> None:
        response = case.call_and_validate(checks=CHECKS)
        counts[(operation.label, response.status_code)] += 1

    run()


def test_api_never_answers_5xx_and_matches_its_schema(api):
    schema = schemathesis.openapi.from_asgi("/docs.json", api.app)
    operations = [result.ok() for result in schema.get_all_operations() if result.ok().label not in IN_PROCESS_SKIP]
    assert "POST /v1/photos/assess" in {operation.label for operation in operations}
    counts: Counter = Counter()
    for operation in operations:
        fuzz_operation(operation, counts)
    print("fuzz examples by operation and status:", dict(sorted(counts.items())))
    assert sum(counts.values()) >= 2 * len(operations)
    assert all(status < 500 for _, status in counts)
