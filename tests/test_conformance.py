"""The fast verdict of the schema (conformance.py) is jsonschema's, on every kind of document."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runner.conformance import conforms
from runner.document import load
from runner.schema import _validator, load_schema
from tests.fuzzing import DATA, SHIPPED, from_schema
from tests.support import ROOT

CORPUS = sorted((ROOT / "tests" / "acceptance").rglob("*.yaml")) + SHIPPED


def same_verdict(data: Any) -> None:
    expected = _validator().is_valid(data)
    assert conforms(data, load_schema()) == expected, data


@pytest.mark.parametrize("path", CORPUS, ids=lambda path: f"{path.parent.name}/{path.name}")
def test_every_corpus_file(path: Path) -> None:
    document, _ = load(path)
    if document is not None:
        same_verdict(document.data)


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(st.one_of(from_schema(load_schema()), DATA, st.dictionaries(st.sampled_from(["version", "processes"]), DATA)))
def test_generated_documents(data: Any) -> None:
    same_verdict(yaml.safe_load(yaml.safe_dump(data)))  # as a file would give it


def test_json_numbers_and_booleans_are_told_apart() -> None:
    base = {"version": 1, "processes": {"p": {"target": "m:f"}}}
    for version in (1, 1.0, True, "1", 2):
        same_verdict({**base, "version": version})
