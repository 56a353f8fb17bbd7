"""Single ICD-10-CM codes are answered from their category, read from the index text by
binary search, without building sets of all ~98,000 codes: the answers must be exactly
those of the full index, and compiling the packs and checking a claim must not build it."""

from __future__ import annotations

import bisect
import json
import random

from cleanclaim.dsl.codesets import icd10cm
from cleanclaim.engine import Engine
from tests.policy_cases_plugin import REPO, TODAY


def test_every_code_is_answered_as_the_full_index_answers() -> None:
    index = icd10cm._index()
    for key in index.billable | index.non_billable:
        assert icd10cm.is_code(key)
        assert icd10cm.is_billable(key) == (key in index.billable), key


def test_non_codes_and_prefixes_are_answered_as_the_full_index_answers() -> None:
    index = icd10cm._index()
    codes = sorted(index.billable | index.non_billable)
    rng = random.Random(3)
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    tried = ["", "R", "R0", "~", "R07~", "ÉÉÉ", "ZZZZ", "A00", "a00.0", "R0.79"]
    for _ in range(20_000):
        noise = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 3)))
        code = rng.choice(codes)
        tried.append(code[: rng.randint(0, len(code))] + noise)
    for text in tried:
        key = icd10cm._key(text)
        assert icd10cm.is_code(text) == (key is not None and index.has(key)), text
        assert icd10cm.is_billable(text) == (key is not None and key in index.billable), text


def test_billable_codes_under_a_code_are_those_of_the_full_index() -> None:
    index = icd10cm._index()
    ordered = index.billable_sorted
    for key in random.Random(5).sample(sorted(index.billable | index.non_billable), 2_000):
        start = bisect.bisect_left(ordered, key)
        expected = []
        while start < len(ordered) and ordered[start].startswith(key):
            expected.append(icd10cm.dotted(ordered[start]))
            start += 1
        assert icd10cm.billable_codes_under(key) == expected, key


def test_compiling_the_packs_and_checking_a_claim_build_no_full_index() -> None:
    icd10cm._index.cache_clear()
    icd10cm._category.cache_clear()
    try:
        engine = Engine(today=TODAY)
        for claim in json.loads((REPO / "payer_policies" / "examples" / "claims.json").read_text()):
            engine.check(claim)
        assert icd10cm._index.cache_info().currsize == 0
        # a few hundred categories at most (medicare/age-sex.policy names the ~80
        # categories of ICD-10-CM chapter 15 for the MCE maternity edit): each is one
        # binary search of the index text, never the full index
        assert 0 < icd10cm._category.cache_info().currsize < 300
    finally:
        icd10cm._index.cache_clear()
