"""The documented-output patterns: what `…` stands for, and that a wrong answer is caught."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.docs.examples import examples_of, mismatches, pattern


@pytest.mark.parametrize(
    ("documented", "served"),
    [
        ('{"total": …, "ranking": "distance"}', {"total": 3, "ranking": "distance", "at": "x"}),
        ('{"a": 1, …}', {"a": 1, "b": 2}),
        ('{"merchant": {…}}', {"merchant": {"id": 1}}),
        ('{"items": [{"id": 1}, …]}', {"items": [{"id": 1, "x": 0}, {"id": 2}]}),
        ('{"token": "lbs_ut_…"}', {"token": "lbs_ut_abc"}),
        ('{"closes_at": "…+02:00"}', {"closes_at": "2026-12-04T18:00:00+02:00"}),
        ('{"distance_m": 9.4}', {"distance_m": 9.4}),
        ('{"n": 2}', {"n": 2.0}),
        ("[…]", []),
    ],
)
def test_a_matching_answer_has_no_mismatch(documented: str, served: object) -> None:
    assert mismatches(pattern(documented), served) == []


@pytest.mark.parametrize(
    ("documented", "served", "where"),
    [
        ('{"ranking": "distance"}', {"ranking": "relevance"}, "$.ranking"),
        ('{"field": "radius_m", …}', {"detail": "x"}, "$.field"),
        ('{"items": [{"id": 1}]}', {"items": [{"id": 1}, {"id": 2}]}, "$.items"),
        ('{"items": [{"id": 1}, …]}', {"items": []}, "$.items"),
        ('{"token": "lbs_ut_…"}', {"token": "lbs_mk_abc"}, "$.token"),
        ('{"open_now": true}', {"open_now": 1}, "$.open_now"),
        ('{"m": {"id": 375, …}}', {"m": {"id": 376}}, "$.m.id"),
        ('{"m": {…}}', {"m": []}, "$.m"),
        ('{"w": [1, "…", 4]}', {"w": [1, 2, 3, 5]}, "$.w"),
        ('{"w": [{"d": "mon"}, {"d": "tue"}]}', {"w": [{"d": "mon"}, {"d": "wed"}]}, "$.w[1].d"),
    ],
)
def test_a_wrong_answer_is_caught_where_it_differs(documented: str, served: object, where: str) -> None:
    found = mismatches(pattern(documented), served)
    assert found and found[0].startswith(where), found


def test_commands_and_their_outputs_are_read_from_markdown(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "Text.\n\n```sh\n# a comment\nA=$(curl -s x | jq .id)\ncurl -s -X POST x \\\n  -d '{\"a\":\n 1}'"
        '  # {"id": …}\ncurl -s y <<JSON\n{"b": 2}\nJSON\n# {"b":\n#  2}\n```\n\n```json\n{"c": 3}\n```\n'
        "\n```sh\nlbs train\n```\n"
    )
    found = examples_of(page, tmp_path)
    assert [e.line for e in found] == [5, 6, 9]
    assert [e.expected for e in found] == [None, '{"id": …}', '{"c": 3}']
    assert found[2].command.endswith("JSON")
