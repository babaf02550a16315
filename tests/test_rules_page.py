"""docs/rules.md maps every rule to the tests that name it, and stays in step with them."""

from __future__ import annotations

import textwrap

import rules_page

SPEC = """\
# securepractice

## Accounts and identity (ID)
- ID-1 A user's username is their email address. Emails are compared
  case-insensitively after trimming.
- ID-2 Every user belongs to exactly one practice (the account that invited
  them, e.g. a clinic). An email is one user.

## Operations (OP)
- OP-6 One security page.
"""

TESTS = '''\
import pytest


def helper() -> None:  # ID-2: a helper is no test
    pass


# ID-1
@pytest.mark.parametrize("x", [1])
def test_a(x: int) -> None:
    assert x


def test_b() -> None:
    """Checks ID-2 (and XX-9, no rule)."""


class TestGroup:
    def test_c(self) -> None:
        assert True  # OP-6

    def test_id_1_by_name(self) -> None:
        pass


def test_to_512_characters() -> None:
    pass
'''


def test_the_committed_rules_page_is_what_the_tests_make() -> None:
    """Regenerate with `python tests/rules_page.py > docs/rules.md` when this fails."""
    assert rules_page.PAGE.read_text(encoding="utf-8") == rules_page.page()


def test_every_rule_of_the_list_is_on_the_page() -> None:
    rules = rules_page.read_rules(rules_page.RULES.read_text(encoding="utf-8"))
    text = rules_page.PAGE.read_text(encoding="utf-8")
    assert len(rules) > 100
    assert all(f"- **{rule.id}** " in text for rule in rules)


def test_the_list_of_rules_is_made_of_first_sentences_by_family() -> None:
    made = rules_page.rules_from_spec(SPEC)
    assert made == (
        "# Accounts and identity (ID)\n"
        "ID-1\tA user's username is their email address.\n"
        "ID-2\tEvery user belongs to exactly one practice (the account that invited them, "
        "e.g. a clinic).\n"
        "# Operations (OP)\n"
        "OP-6\tOne security page.\n"
    )
    assert [(r.id, r.family) for r in rules_page.read_rules(made)] == [
        ("ID-1", "Accounts and identity (ID)"),
        ("ID-2", "Accounts and identity (ID)"),
        ("OP-6", "Operations (OP)"),
    ]


def test_a_test_names_a_rule_by_comment_above_or_in_it_docstring_or_name() -> None:
    naming = rules_page.tests_naming_rules(
        [("tests/test_x.py", TESTS)], known={"ID-1", "ID-2", "OP-6", "TO-512"}
    )
    assert naming == {
        "ID-1": ["tests/test_x.py::test_a", "tests/test_x.py::TestGroup::test_id_1_by_name"],
        "ID-2": ["tests/test_x.py::test_b"],
        "OP-6": ["tests/test_x.py::TestGroup::test_c"],
        "TO-512": ["tests/test_x.py::test_to_512_characters"],
    }


def test_only_known_rules_count() -> None:
    naming = rules_page.tests_naming_rules([("t.py", TESTS)], known={"ID-2"})
    assert naming == {"ID-2": ["t.py::test_b"]}


def test_names_spell_rules_with_or_without_an_underscore() -> None:
    assert rules_page.ids_in_name("test_mf_3_each_step_once") == {"MF-3"}
    assert rules_page.ids_in_name("test_lk1_and_pw_10") == {"LK-1", "PW-10"}
    assert rules_page.ids_in_name("test_rfc_6238_vectors") == set()


def test_a_rule_no_test_names_says_so() -> None:
    rules = rules_page.read_rules("# Operations (OP)\nOP-1\tSupport staff.\nOP-2\tPruning.\n")
    text = rules_page.render(rules, {"OP-2": ["tests/t.py::test_prune"]})
    assert text.endswith(
        textwrap.dedent("""\
            ## Operations (OP)

            - **OP-1** Support staff.
                - *no test names it yet*
            - **OP-2** Pruning.
                - `tests/t.py::test_prune`
            """)
    )
