"""The README is a front page a newcomer can follow (issue 23 item 13): short, the key created before
the first request, `ankang` named where `make run` installs it, every docs/ link alive."""

from __future__ import annotations

import re

from tests.conftest import PROJECT_ROOT

README = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")


def test_the_readme_is_a_front_page_of_at_most_120_lines():
    assert len(README.splitlines()) <= 120
    assert README.index("make run") < README.index("make test") < README.index("## ")  # the two commands first
    assert "Python 3.11" in README


def test_a_key_is_created_before_the_first_request_that_needs_it():
    first_request = README.index("curl ")
    assert README.index(".venv/bin/ankang keys create") < first_request
    assert README.index("export ANKANG_KEY=") < first_request


def test_the_enterprise_role_is_described_with_the_keys():
    roles = README[README.index("## Roles") :]
    assert "`enterprise`" in roles[: roles.index("\n## ", 1)]
    security = (PROJECT_ROOT / "docs" / "security.md").read_text(encoding="utf-8")
    keys = security[: security.index("**Pages.**")]
    assert "`enterprise` is bound to one" in keys and "--role enterprise --enterprise-id" in keys


def test_scoring_examples_use_a_clearly_made_up_enterprise():
    api = (PROJECT_ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    assert "91310000" not in api and '"enterprise_id": "EXAMPLE-0001"' in api
    assert "opened for it" in api  # and it says what scoring does: a supervision case at tier >= 4


def test_every_relative_link_of_the_readme_and_docs_exists():
    for page in [PROJECT_ROOT / "README.md", *sorted((PROJECT_ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", page.read_text(encoding="utf-8")):
            assert (page.parent / target).exists(), f"{page.name} links {target}"
