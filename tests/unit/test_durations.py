"""One duration syntax for every flag and variable that takes a duration: plain seconds, or h/m/s/ms parts."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.cli import main, parse_args
from controller.config import env_name, settings
from controller.durations import parse_duration

DURATION_FLAGS = [spec.flag for _, spec in settings() if spec.kind == "seconds"]


pytestmark = pytest.mark.usefixtures("no_controller_env")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("500ms", 0.5), ("90s", 90), ("2m", 120), ("1h", 3600), ("1h30m", 5400), ("45", 45), ("0.5", 0.5)],
)
def test_the_forms(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@given(st.integers(0, 30), st.integers(0, 59), st.integers(0, 59), st.integers(0, 999), st.booleans())
def test_parts_add_up(h, m, s, ms, bare_seconds):
    parts = [(h, "h"), (m, "m"), (s, "s"), (ms, "ms")]
    text = "".join(f"{n}{unit}" for n, unit in parts if n)
    if not text:
        return
    if bare_seconds and m and s and not ms:  # "1m30" is 90 s, as `wait` always read it
        text = text.removesuffix("s")
    assert parse_duration(text) == pytest.approx(h * 3600 + m * 60 + s + ms / 1000)


@pytest.mark.parametrize("text", ["", "1d", "1h30", "30s2m", "1 m", "ms", "m", "-5s", "1.2.3s"])
def test_what_is_not_a_duration(text):
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


@pytest.mark.parametrize("flag", DURATION_FLAGS)
def test_every_duration_flag_and_variable_takes_the_units(monkeypatch, flag):
    path = next(spec.path for _, spec in settings() if spec.flag == flag)

    def value(config):
        group, name = path.split(".")
        return getattr(getattr(config, group), name)

    assert value(parse_args(["--namespaces", "a", flag, "1s500ms"])) == pytest.approx(1.5)
    monkeypatch.setenv(env_name(flag), "2500ms")
    assert value(parse_args(["--namespaces", "a"])) == pytest.approx(2.5)


def test_a_longer_unit_is_still_checked_against_the_range(capsys):
    assert main(["--namespaces", "a", "--sync-delay", "2m"]) == 2
    err = capsys.readouterr().err
    assert "--sync-delay must be 0 to 60 seconds, got 120" in err


def test_a_bad_duration_names_the_flag_or_variable(monkeypatch, capsys):
    assert main(["--namespaces", "a", "--resync-interval", "1d"]) == 2
    assert "--resync-interval" in capsys.readouterr().err
    monkeypatch.setenv(env_name("--resync-interval"), "1d")
    assert main(["--namespaces", "a"]) == 2
    err = capsys.readouterr().err
    assert env_name("--resync-interval") in err and "1h30m" in err and len(err.splitlines()) == 1
