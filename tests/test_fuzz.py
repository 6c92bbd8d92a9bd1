"""Random, generated and mutated documents never crash the checker; every problem has a place.

The same fuzzers run at tens of thousands of documents in `benchmarks/soak.py`."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings

from runner.checker import check_text
from runner.schema import load_schema
from tests.fuzzing import FUZZERS, Fuzzer, from_schema

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), database=None)


@pytest.mark.parametrize("fuzzer", FUZZERS, ids=lambda fuzzer: fuzzer.name)
def test_fuzzer(fuzzer: Fuzzer) -> None:
    FUZZ(given(*fuzzer.strategies)(fuzzer.check))()


def test_documents_from_the_schema_often_pass_it_and_reach_the_later_stages() -> None:
    # Else that fuzzer would only ever test the schema stage, not the rules and the hazards.
    outcomes: list[bool] = []

    @settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(from_schema(load_schema()))
    def check(document: Any) -> None:
        result = check_text(yaml.safe_dump(document), "fuzz.yaml", imports=False)
        outcomes.append(not any(problem.code.startswith("schema-") for problem in result.problems))

    check()
    assert sum(outcomes) >= len(outcomes) // 10, f"{sum(outcomes)} of {len(outcomes)} passed the schema"
