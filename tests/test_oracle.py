"""A differential oracle (issue 17.5): for policies generated from the grammar and random
claims, the general line body, the body specialised by procedure code (dsl/specialize.py)
and `explain` agree on every finding."""

from __future__ import annotations

import datetime as dt
import itertools
import random
from pathlib import Path
from typing import Any

import pytest

import cleanclaim.engine.engine as engine_module
from cleanclaim.dsl.compiler import compile_pack
from cleanclaim.dsl.errors import PolicyCompileError
from cleanclaim.engine.bench import synthetic_claim
from cleanclaim.engine.engine import Engine
from cleanclaim.engine.tools import fuzz

TODAY = dt.date(2026, 11, 27)
POLICIES = 40
CLAIMS = 25


# A small generator of well-typed policies (engine/tools/fuzz.py's mostly checks the checker).
_NUMBERS = {
    "line": [
        "line.units",
        "1",
        "2",
        "count(line.modifiers)",
        "line.minutes",
        "days_between(line.service_date, claim.received_date)",
        "years_between(member.birth_date, line.service_date)",
    ],
    "claim": [
        "1",
        "65",
        "count(claim.lines)",
        "years_between(member.birth_date, claim.first_service_date)",
    ],
}
_CONDITIONS = {
    "line": [
        "line.code in [93000, 93005]",
        "any of line.modifiers in [26, TC]",
        "line.units is missing",
        "line.units is present",
        # lookup tables (13.6): a key the table lacks is missing
        "line.units > lim[line.code].max",
        "lim[line.code].max is present",
        "line.code in lim",
        'lim[line.code].note == "a"',
        'lim[line.code].note != "a"',
        # counters reading the member, summing amounts (13.8)
        "total_to_date(oc) > 2",
        "total_before(oc) >= 1",
        "visit_number(ov) > 1",
        "any o in other_lines where o.code == line.code",
        "line.code == 93306",
    ],
    "claim": [
        'claim.place_of_service in ["11", "21"]',
        "member.birth_date is missing",
        'lim["93306"].max == count(claim.lines)',
    ],
}
_SHARED = [
    'member.sex == "F"',
    'member.sex != "M"',
    'claim.plan == "gold"',
    'claim.plan in ["GOLD", "platinum"]',
    "true",
    "member.sex is present",
]


def _condition(rng: random.Random, scope: str, depth: int) -> str:
    if depth <= 0 or rng.random() < 0.3:
        if rng.random() < 0.5:
            op = rng.choice(("==", "!=", "<", "<=", ">", ">="))
            return f"{rng.choice(_NUMBERS[scope])} {op} {rng.choice(_NUMBERS[scope])}"
        return rng.choice(_CONDITIONS[scope] + _SHARED)
    left, right = _condition(rng, scope, depth - 1), _condition(rng, scope, depth - 1)
    return rng.choice(
        (
            f"{left} and {right}",
            f"{left} or {right}",
            f"not ({left})",
            f"({left}) and not ({right})",
        )
    )


TABLE = """table lim = key "code" columns "code", "max", "note"
  row "93000", 1, "a"
  row "93306", 2, ""
  row "J0100", 3, "b"
end
counter oc
  counts sum(first_present(lim[line.code].max, line.units)) of lines
    where years_between(member.birth_date, line.service_date) >= 60
  per calendar year
end
counter ov
  counts visits of lines where member.sex == "F" or any of line.modifiers in [26]
  per day
end"""


def generate(rng: random.Random) -> str:
    rules = ["version 1", TABLE]
    for i in range(rng.randint(1, 4)):
        scope = rng.choice(("all lines", "codes [93000, 93306]", "claim"))
        kind = "claim" if scope == "claim" else "line"
        extra = f'  plan is "{rng.choice(["Gold", "silver"])}"\n' if rng.random() < 0.2 else ""
        let = ""
        if rng.random() < 0.4:
            let = f"  let x = {_condition(rng, kind, 1)}\n"
        when = _condition(rng, kind, 3) + (" and x" if let else "")
        # exceptions (13.9): a condition, or an earlier rule (never a circle)
        if rng.random() < 0.3:
            extra += f"  except when {_condition(rng, kind, 1)}\n"
        if i and rng.random() < 0.4:
            extra += f'  except rule "fuzz/r{rng.randrange(i)}"\n'
        message = rng.choice(
            [
                "m",
                "{member.sex} {claim.plan}",
                '{lim["93000"].note}',
                "{days_between(claim.first_service_date, claim.received_date)}",
            ]
        )
        rules.append(
            f'rule "fuzz/r{i}"\n  applies to {scope}\n  root cause coding\n{extra}'
            f"{let}  when {when}\n  then {rng.choice(['deny', 'review'])} CO-16\n"
            f'  message "{message}"\nend'
        )
    return "\n".join(rules) + "\n"


def _claims(rng: random.Random) -> list[dict[str, Any]]:
    claims = []
    for i in range(CLAIMS):
        data = synthetic_claim(
            rng, i, codes=["93000", "93005", "93306", "J0100", "99213"], payers=("fuzz",)
        )
        if rng.random() < 0.3:  # missing values, for the missing-value rule
            data["member"].pop(rng.choice(["sex", "birth_date"]), None)
        for line in data["lines"]:
            if rng.random() < 0.2:
                line["units"] = None
            if rng.random() < 0.3:
                line["modifiers"] = [rng.choice(["26", "TC", "59"])]
        if rng.random() < 0.3:
            data["plan"] = rng.choice([None, "gold", "Gold", "silver"])
        claims.append(data)
    return claims


def _engines(root: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Engine, Engine]:
    special = Engine(policy_roots=[root], today=TODAY, plugins=(), tables={})

    def general(*args: Any, **kwargs: Any) -> Any:
        return compile_pack(*args, **{**kwargs, "specialize": False})

    with monkeypatch.context() as patch:
        patch.setattr(engine_module, "compile_pack", general)
        plain = Engine(policy_roots=[root], today=TODAY, plugins=(), tables={})
    return special, plain


def _fired(traces: list[Any]) -> list[tuple[str, str | None]]:
    return sorted((t.rule, t.message) for t in traces if t.status == "fired")


def test_general_specialised_and_explain_agree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(17)
    compiled = found = undecided = tables = excepted = 0
    for n in itertools.count():
        if compiled >= POLICIES or n > 40 * POLICIES:
            break
        text = generate(rng) if n % 4 else fuzz.generate(rng)
        root = tmp_path / f"root{n}"
        (root / "fuzz").mkdir(parents=True)
        (root / "fuzz" / "pack.yaml").write_text("id: fuzz\nname: fuzz\n", encoding="utf-8")
        (root / "fuzz" / "rules.policy").write_text(text, encoding="utf-8")
        try:
            special, plain = _engines(root, monkeypatch)
        except PolicyCompileError:
            continue  # most generated policies have errors: the checker's business
        compiled += 1
        claims = _claims(rng)
        for data in claims + claims:  # seen twice: the second time codes get classes
            a, b = special.check(data).to_json(), plain.check(data).to_json()
            assert a == b, f"specialised and general bodies differ\n{text}\n{data}"
            decision, traces = special.explain(data)
            assert decision.to_json() == a
            found += len(decision.findings)
            undecided += sum(f.message.startswith("needs ") for f in decision.findings)
            tables += sum(f.message.startswith("needs lim[") for f in decision.findings)
            excepted += sum(t.status == "excepted" for t in traces)
            assert _fired(traces) == sorted(
                (f.rule, f.message)
                for f in decision.findings
                if "could not be applied" not in f.message
            ), f"explain differs\n{text}\n{data}"
    assert compiled >= POLICIES // 2, compiled
    assert found > 100 and undecided > 10, (found, undecided)  # the test sees findings
    assert tables > 5, tables  # and reads of tables (a key they lack)
    assert excepted > 5, excepted  # and findings an `except rule` suppressed
