"""The tag grammar: one table, aliases, near-miss suggestions."""

from __future__ import annotations

import json

from nb2pipe.notebook.tags import grammar_json, parse_tag, suggest_identifier


def test_our_tags_and_kale_aliases_mean_the_same() -> None:
    assert parse_tag("step:load").kind == parse_tag("block:load").kind == "step"
    assert parse_tag("after:load").kind == parse_tag("prev:load").kind == "after"
    assert parse_tag("parameters").kind == parse_tag("pipeline-parameters").kind
    assert parse_tag("metrics").kind == parse_tag("pipeline-metrics").kind
    assert parse_tag("imports").kind == parse_tag("functions").kind == "library"


def test_near_misses_get_a_suggestion() -> None:
    tag = parse_tag("stpe:load")
    assert tag.problem == "unknown" and tag.suggestion == "step:load"
    assert parse_tag("paramters").suggestion == "parameters"


def test_unrelated_tags_are_ignored() -> None:
    for raw in ("hide-input", "remove-cell", "limit:nvidia.com/gpu:1", "thebe-init"):
        assert parse_tag(raw).kind is None and parse_tag(raw).problem is None


def test_values_are_checked() -> None:
    assert parse_tag("retries:3").problem is None
    assert parse_tag("retries:x").problem
    assert parse_tag("timeout:0").problem
    assert parse_tag("cache:maybe").problem
    assert parse_tag("step").problem  # needs a name
    assert parse_tag("skip:yes").problem  # takes none


def test_values_that_python_would_misread_are_refused() -> None:
    for raw in ("retries:\u00b2", "retries:\u0663", "retries:99999999999999999999",
                "timeout:inf", "timeout:nan", "timeout:1e400", "timeout:-5", "timeout:1_0",
                "timeout:\uff15"):
        assert parse_tag(raw).problem, raw
    assert parse_tag("timeout:2.5").problem is None and parse_tag("timeout:1e3").problem is None


def test_kale_empty_block_continues_the_block_above() -> None:
    tag = parse_tag("block:")
    assert tag.kind == "step" and tag.value is None and tag.problem is None
    assert parse_tag("step:").problem  # ours needs a name


def test_suggested_identifiers() -> None:
    assert suggest_identifier("Load Data-2") == "load_data_2"
    assert suggest_identifier("2nd pass") == "step_2nd_pass"
    assert suggest_identifier("class") == "class_"


def test_grammar_is_served_as_json() -> None:
    data = json.loads(json.dumps(grammar_json()))
    prefixes = {t["prefix"] for t in data["tags"]}
    assert {"step", "after", "parameters", "skip", "metrics", "block", "prev"} <= prefixes
    assert all(t["alias_of"] in (None, "step", "after", "parameters", "metrics", "skip")
               for t in data["tags"])
