"""The policy language, driven by data files in tests/data (identity, pairs, malformed inputs, normalization)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from nectar.config import Config
from nectar.errors import NectarError
from nectar.policy import format_expr, format_policy, normalize, parse_expr, parse_policy
from nectar.policy.check import check_policy
from nectar.policy.format import Spelling

DATA = Path(__file__).parent / "data"


def _lines(name: str) -> list[str]:
    return [
        ln.rstrip("\n")
        for ln in (DATA / "expr" / name).read_text(encoding="utf-8").splitlines()
        if ln.strip() and not ln.startswith("#")
    ]


def _tsv(name: str) -> list[list[str]]:
    return [
        ln.split("\t")
        for ln in (DATA / "expr" / name).read_text(encoding="utf-8").splitlines()
        if not ln.startswith("#") and "\t" in ln
    ]


# ------------------------------------------------------------------------------------------- expressions


@pytest.mark.parametrize("text", _lines("identity.txt"))
def test_expression_identity(text: str) -> None:
    assert format_expr(parse_expr(text).expr) == text


@pytest.mark.parametrize(("text", "canonical"), _tsv("pairs.txt"))
def test_expression_pairs(text: str, canonical: str) -> None:
    formatted = format_expr(parse_expr(text).expr)
    assert formatted == canonical
    assert format_expr(parse_expr(formatted).expr) == formatted  # idempotent


@pytest.mark.parametrize(("text", "column", "message"), _tsv("malformed.txt"))
def test_malformed_expression(text: str, column: str, message: str) -> None:
    with pytest.raises(NectarError) as info:
        parse_expr(text)
    err = info.value
    assert message in err.message
    assert err.span is not None and err.span.column == int(column)
    rendered = err.render()
    assert rendered.startswith(f"<expr>:1:{column}: error: ")
    assert "^" in rendered  # a caret under the span


def _render_clauses(text: str) -> str:
    out = []
    for c in normalize(parse_expr(text).expr):
        conds = " & ".join(format_expr(a) for a in c.atoms) or "*"
        out.append(f"{c.scope}: {conds}")
    return " || ".join(out)


@pytest.mark.parametrize(("text", "expected"), _tsv("normalize.txt"))
def test_normalize(text: str, expected: str) -> None:
    if expected.startswith("ERROR "):
        with pytest.raises(NectarError) as info:
            _render_clauses(text)
        assert expected.removeprefix("ERROR ") in info.value.message
        assert info.value.hint  # every refusal says what to write instead
    else:
        assert _render_clauses(text) == expected


def test_aliases_resolve_to_refinery_fields() -> None:
    e = parse_expr("http.status >= 500 and root.duration > 1s").expr
    first, second = e.items  # type: ignore[union-attr]
    assert first.field.refinery_fields == ("http.response.status_code", "http.status_code")
    assert second.field.refinery_fields == ("root.duration_ms",)
    assert second.value.value == 1000.0


def test_aliases_can_be_overridden() -> None:
    e = parse_expr("http.status >= 500", aliases={"http.status": ("status",)}).expr
    assert e.field.refinery_fields == ("status",)  # type: ignore[union-attr]


def test_alias_typo_is_a_warning() -> None:
    parsed = parse_expr("duraton > 5")
    assert any("did you mean 'duration'" in d.message for d in parsed.diagnostics)


def test_durations_are_milliseconds() -> None:
    cases = {"250ms": 250.0, "5s": 5000.0, "1.5m": 90_000.0, "2h": 7_200_000.0}
    for text, ms in cases.items():
        e = parse_expr(f"duration > {text}").expr
        assert e.value.value == ms  # type: ignore[union-attr]


# ------------------------------------------------------------------------------------------- policies

README_HEADER = (DATA / "policy" / "identity" / "readme.toon").read_text(encoding="utf-8")
README_STANDARD = (DATA / "policy" / "pairs" / "readme-standard.in.toon").read_text(encoding="utf-8")


def test_readme_example_both_spellings_same_ir() -> None:
    a = parse_policy(README_HEADER, "a.toon")
    b = parse_policy(README_STANDARD, "b.toon")
    assert a == b
    assert [r.name for r in a.rules] == ["keep-errors", "keep-slow", "sample-rest"]
    assert a.budget_per_second == 10000
    assert a.rules[2].action.rate == 100  # type: ignore[union-attr]


@pytest.mark.parametrize("path", sorted((DATA / "policy" / "identity").glob("*.toon")), ids=lambda p: p.stem)
def test_policy_identity(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert format_policy(parse_policy(text, str(path))) == text


@pytest.mark.parametrize("path", sorted((DATA / "policy" / "pairs").glob("*.in.toon")), ids=lambda p: p.stem)
def test_policy_pairs(path: Path) -> None:
    expected = path.with_name(path.name.replace(".in.toon", ".out.toon")).read_text(encoding="utf-8")
    policy = parse_policy(path.read_text(encoding="utf-8"), str(path))
    assert format_policy(policy) == expected
    assert parse_policy(expected) == policy  # formatting keeps the meaning
    standard = format_policy(policy, Spelling.STANDARD)
    assert parse_policy(standard) == policy
    assert format_policy(parse_policy(standard)) == expected


def test_standard_spelling_agrees_with_official_toon_package() -> None:
    toon_format = pytest.importorskip("toon_format")
    for path in sorted((DATA / "policy").glob("*/*.toon")):
        policy = parse_policy(path.read_text(encoding="utf-8"), str(path))
        standard = format_policy(policy, Spelling.STANDARD)
        decoded = toon_format.decode(standard)["nectar_policy"]
        assert decoded["name"] == policy.name
        assert [r["name"] for r in decoded["rules"]] == [r.name for r in policy.rules]
        assert [str(r["match"]).lower() if isinstance(r["match"], bool) else r["match"] for r in decoded["rules"]] == [
            format_expr(r.match) for r in policy.rules
        ]
        assert [r["priority"] for r in decoded["rules"]] == [r.priority for r in policy.rules]


_CASE = re.compile(r"^### ([^|\n]+?) \| (\d+):(\d+) \| ([^\n]+)\n(.*?)(?=^### |\Z)", re.M | re.S)


def _malformed_policies() -> list[tuple[str, int, int, str, str]]:
    text = (DATA / "policy" / "malformed.txt").read_text(encoding="utf-8")
    return [(m[1], int(m[2]), int(m[3]), m[4], m[5]) for m in _CASE.finditer(text)]


@pytest.mark.parametrize(
    ("name", "line", "column", "message", "body"), _malformed_policies(), ids=lambda v: str(v)[:30]
)
def test_malformed_policy(tmp_path: Path, name: str, line: int, column: int, message: str, body: str) -> None:
    path = tmp_path / "p.toon"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(NectarError) as info:
        check_policy(path, Config())
    err = info.value
    assert message in err.message, err.render()
    assert err.span is not None and (err.span.line, err.span.column) == (line, column), err.render()
    assert err.render().startswith(f"{path}:{line}:{column}: error: ")
    assert err.exit_code == 2


def test_there_are_at_least_thirty_malformed_inputs() -> None:
    assert len(_malformed_policies()) + len(_tsv("malformed.txt")) >= 30


def test_check_warns_about_shared_priority_and_inexact_sample(tmp_path: Path) -> None:
    path = tmp_path / "p.toon"
    path.write_text(
        README_HEADER.replace("keep,90", "keep,100").replace("sample(0.01)", "sample(0.3)"), encoding="utf-8"
    )
    result = check_policy(path, Config())
    messages = [w.message for w in result.warnings]
    assert any("share priority 100" in m for m in messages)
    assert any("keeps 1 trace in 3" in m for m in messages)


def test_check_warns_about_missing_catch_all_and_unreachable_rules(tmp_path: Path) -> None:
    path = tmp_path / "p.toon"
    no_catch_all = README_HEADER.replace("rules[3]", "rules[2]").replace(
        "    sample-rest,Sample remaining traffic,true,sample(0.01),0\n", ""
    )
    path.write_text(no_catch_all, encoding="utf-8")
    assert any("no catch-all" in w.message for w in check_policy(path, Config()).warnings)
    path.write_text(README_HEADER.replace(",keep,90", ",keep,-1"), encoding="utf-8")
    assert any("can never decide" in w.message for w in check_policy(path, Config()).warnings)


def test_or_becomes_several_refinery_rules(tmp_path: Path) -> None:
    path = tmp_path / "p.toon"
    path.write_text(README_HEADER.replace("error == true or http.status >= 500", "http.status >= 500"))
    assert check_policy(path, Config()).refinery_rule_count == 3
    path.write_text(README_HEADER)  # keep-errors: error == true or http.status >= 500
    result = check_policy(path, Config())
    assert result.refinery_rule_count == 4
