"""Hostile options (issue 24, class 1): every numeric option of every command has a
documented range (delayhw.cli.argtypes) that argparse checks before any work.

The options are found in the parsers, not listed here, so a new command's numeric options
are covered as soon as it is registered. The property test throws extreme values at each
and asserts: exit 0 or 2; on 2 one line, no traceback, no work started, nothing written;
on 0 the parsed value is inside the documented range; and an answer within seconds.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import time
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import delayhw.cli as cli_package
from delayhw.cli import build_parser, main
from delayhw.cli.argtypes import Checked, commands, limits_table, options

PARSER = build_parser()
OPTIONS = options(PARSER)
DOCS = Path(__file__).parent.parent / "docs" / "cli-limits.md"


def _label(item) -> str:
    return f"{item[0]} {max(item[1].option_strings, key=len)}"


def test_every_numeric_option_has_a_checked_range():
    loose = [_label(o) for o in OPTIONS
             if not isinstance(o[1].type, Checked) and o[1].choices is None]
    assert not loose, f"options without a checked range (use delayhw.cli.argtypes): {loose}"
    assert len(OPTIONS) > 30          # the discovery found the commands' options


def test_docs_list_every_range():
    """docs/cli-limits.md carries the table made from the parsers (regenerate it with
    ``python -c 'from delayhw.cli import build_parser; from delayhw.cli.argtypes import
    limits_table; print(limits_table(build_parser()))'``)."""
    assert limits_table(PARSER) in DOCS.read_text()


def _required_argv(command: str, skip: str) -> list[str]:
    """Dummy values for the positionals and required options of ``command`` (the work is
    never reached in the property test, so they need not exist)."""
    argv = [command]
    for action in commands(PARSER)[command]._actions:
        if not action.option_strings and action.dest != "help":
            argv.append("x.npz")
        elif action.required and skip not in action.option_strings:
            argv += [action.option_strings[0], "x.npz"]
    return argv


# Extreme texts: non-finite, negative, huge, not numbers, other spellings of numbers.
_numbers = st.one_of(
    st.integers(-(1 << 70), 1 << 70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from([2 ** 63, 2 ** 64, 2 ** 64 - 1, 2 ** 32, -1, 0, 1, 65535, 10 ** 9]).map(str),
    st.integers(0, 400).map(lambda e: f"1e{e}"),
    st.integers(0, 400).map(lambda n: "9" * n))
_texts = st.one_of(
    st.sampled_from(["nan", "NaN", "inf", "-inf", "+inf", "Infinity", "-0", "0.0", "1e-320",
                     "0x10", "1_000", " 7 ", "", "2**63", "1,2", "65535,65535", ",", "1,,",
                     "١٢", "-", "1e", "True", "None", "\x00", "5\n6"]),
    st.text(max_size=12),
    st.lists(_numbers, min_size=1, max_size=10).map(",".join))
VALUES = st.one_of(_numbers, _texts)


def _in_range(action, value) -> bool:
    if isinstance(action.type, Checked):
        return action.type.contains(value)
    return value in action.choices


def check_option(item, text: str, tmp: Path) -> None:
    command, action = item
    flag = max(action.option_strings, key=len)
    argv = _required_argv(command, flag) + [f"{flag}={text}"]
    started = []

    def no_work(func, args):
        started.append(getattr(args, action.dest))
        return 0

    err = io.StringIO()
    t0 = time.monotonic()
    with mock.patch.object(cli_package, "run_command", no_work), \
            contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(argv)
    assert time.monotonic() - t0 < 5, f"{argv}: took {time.monotonic() - t0:.1f} s"
    assert code in (0, 2), (argv, code)
    if code == 2:
        lines = err.getvalue().strip("\n").split("\n")
        assert len(lines) == 1 and "Traceback" not in err.getvalue(), (argv, err.getvalue())
        assert flag in lines[0], (argv, lines[0])
        assert not started, f"{argv}: refused but the command ran"
    else:
        assert started and _in_range(action, started[0]), (argv, started)
        value = started[0]
        assert not isinstance(value, float) or math.isfinite(value)
    assert not any(tmp.iterdir()), f"{argv}: wrote {list(tmp.iterdir())}"


@pytest.fixture
def empty_cwd(tmp_path):
    old = os.getcwd()
    os.chdir(tmp_path)
    yield tmp_path
    os.chdir(old)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(item=st.sampled_from(OPTIONS), text=VALUES)
def test_extreme_values_at_every_numeric_option(empty_cwd, item, text):
    check_option(item, text, empty_cwd)


@pytest.mark.slow
@settings(max_examples=20_000, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(item=st.sampled_from(OPTIONS), text=VALUES)
def test_extreme_values_at_every_numeric_option_at_length(empty_cwd, item, text):
    check_option(item, text, empty_cwd)


@pytest.mark.parametrize("item", OPTIONS, ids=_label)
def test_each_option_refuses_nan_inf_and_minus_one_and_huge(empty_cwd, item):
    """Every option, not only those hypothesis happens to draw."""
    for text in ("nan", "inf", "-inf", "-1", str(2 ** 64), "1e400", "x"):
        check_option(item, text, empty_cwd)


# ----------------------------------------------------------------------------- the issue's examples


@pytest.mark.parametrize("argv", [
    ["train", "--task", "synthetic", "--lr", "inf"],
    ["train", "--task", "synthetic", "--lr-delay", "inf"],
    ["train", "--task", "synthetic", "--seed", "-1"],
    ["train", "--task", "synthetic", "--seed", str(2 ** 64 + 5)],
    ["build", "m.npz", "--board", "icebreaker", "--clock-mhz", "nan"],
    ["build", "m.npz", "--board", "icebreaker", "--clock-mhz", "inf"],
    ["run", "m.npz", "i.npz", "--port", "sim:icarus", "--baud", str(10 ** 12)],
    ["run", "m.npz", "i.npz", "--port", "sim:icarus", "--timeout", "nan"],
    ["run", "m.npz", "i.npz", "--port", "sim:icarus", "--timeout", "-1"],
    ["regress", "--seeds", str(2 ** 63)],
    ["regress", "--steps", str(10 ** 9)],
    ["regress", "--batch", str(10 ** 9)],
    ["regress", "--max-size", "65535"],
], ids=lambda a: " ".join(a[:1] + a[-2:]))
def test_issue_examples_are_refused_before_any_work(empty_cwd, capsys, argv):
    flag = argv[-2]
    if argv[0] in ("train", "run"):
        argv = argv + ["--out", "r.npz"]
    t0 = time.monotonic()
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2 and time.monotonic() - t0 < 5
    assert len(err.strip().split("\n")) == 1 and flag in err
    assert not any(empty_cwd.iterdir())


@pytest.mark.parametrize("item", OPTIONS, ids=lambda item: f"{item[0]}-{item[1].dest}")
def test_a_double_dash_as_the_value_is_refused(empty_cwd, item):
    """``--option=--``: argparse drops the ``--`` and stores ``[]`` past the option's type and
    choices (found by the test above at length); delayhw's parser refuses it, naming the
    option."""
    check_option(item, "--", empty_cwd)
