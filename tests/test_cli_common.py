"""delayhw.cli.common: the one report of a run against the golden model (used by ``cosim``
and ``run``) and the shared argument types. The golden result used here is computed
independently by golden.run and checked against the spec equations elsewhere
(test_golden_equations); these tests check the report's verdict and its lines."""

import argparse
import re

import numpy as np
import pytest

from delayhw import Inputs, golden, netgen
from delayhw.cli.common import fraction, int_in, probability, report_against_golden
from delayhw.formats import Result

PARAMS = netgen.NetParams(max_inputs=4, max_size=4, max_layers=2, d_max=(0, 4))


def case(seed=7, labels=True):
    model, spikes = netgen.random_case(seed, PARAMS, batch=4, steps=10)
    labels = np.arange(4) % model.layers[-1].size if labels else None
    return model, Inputs(spikes, labels), golden.run(model, spikes)


def copy(result: Result) -> Result:
    return Result.from_scores(result.scores.copy(), [s.copy() for s in result.spikes])


def test_identical_result_is_reported_as_agreement_with_counts(capsys):
    model, inputs, expected = case()
    assert report_against_golden(model, inputs, copy(expected), "RTL") is None
    out = capsys.readouterr().out.splitlines()
    n_spikes = sum(int(s.sum()) for s in expected.spikes)
    accuracy = 100 * np.mean(expected.predictions == inputs.labels)
    assert out == [f"accuracy: RTL {accuracy:.2f}%, golden {accuracy:.2f}% (4 samples)",
                   f"agreement: RTL == golden, bit for bit (4 samples, {n_spikes} spikes, "
                   f"{expected.scores.size} scores)"]


def test_one_changed_score_is_the_first_difference_and_no_agreement_is_claimed(capsys):
    model, inputs, expected = case(labels=False)
    actual = copy(expected)
    actual.scores[2, 1] += 1
    difference = report_against_golden(model, inputs, actual, "board")
    assert (difference.sample, difference.step, difference.unit) == (2, None, 1)
    assert (difference.golden, difference.rtl) == (expected.scores[2, 1],
                                                   expected.scores[2, 1] + 1)
    out = capsys.readouterr().out.splitlines()
    # the other side is named as the caller names it ("board"), not "RTL"; no labels: no accuracy
    golden = expected.scores[2, 1]
    assert out == [f"MISMATCH: first difference at {difference}".replace(
        f"golden {golden}, RTL {golden + 1}", f"golden {golden}, board {golden + 1}")]
    assert out[0].endswith(f"golden {golden}, board {golden + 1}")


def test_an_earlier_spike_difference_wins_over_a_score_difference(capsys):
    model, inputs, expected = case()
    assert expected.spikes and expected.spikes[0].sum() > 0, "seed 7: a lif layer that spikes"
    actual = copy(expected)
    actual.scores[0, 0] += 5
    actual.spikes[0][1, 3, 0] ^= 1
    difference = report_against_golden(model, inputs, actual, "RTL")
    last = len(model.layers) - 1
    assert (difference.sample, difference.step, difference.layer, difference.unit) == \
        (0, None, last, 0)
    actual.scores[0, 0] -= 5
    difference = report_against_golden(model, inputs, actual, "RTL")
    assert (difference.sample, difference.step, difference.layer, difference.unit) == (1, 3, 0, 0)
    assert "agreement" not in capsys.readouterr().out


@pytest.mark.parametrize("parse, text, rule", [
    (int_in(1, 10), "0", "must be an integer in 1..10, got 0"),
    (int_in(0, 255), "300", "must be an integer in 0..255, got 300"),
    (int_in(0, 5), "1.5", "must be an integer in 0..5, got '1.5'"),
    (probability, "0", "must be a number in (0, 1], got 0"),
    (probability, "nan", "must be a number in (0, 1], got nan"),
    (fraction, "1.5", "must be a number in [0, 1], got 1.5"),
])
def test_argument_types_name_the_rule(parse, text, rule):
    with pytest.raises(argparse.ArgumentTypeError, match=re.escape(rule)):
        parse(text)
    assert parse("1") == 1
