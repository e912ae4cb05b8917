"""The one dataclass -> argparse generator: every config's options, one boolean syntax (plus the old one)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ankang_cli import build_parser
from training.config_options import add_dataclass_arguments, dataclass_from_args
from training.photo.config import PhotoTrainConfig
from training.quantize import QuantizeConfig
from training.risk.config import RiskModelConfig


@dataclass
class Example:
    fast: bool = True
    data: list[Path] = field(default_factory=lambda: [Path("default")])
    ops: list[str] = field(default_factory=lambda: ["Conv"])
    limit: int | None = None
    mode: str = "a"


def parse(*argv: str) -> Example:
    parser = argparse.ArgumentParser(exit_on_error=False)
    add_dataclass_arguments(parser, Example, help={"fast": "go fast"}, repeated=("data",), choices={"mode": "ab"})
    return dataclass_from_args(Example, parser.parse_args(argv))


def test_defaults_are_the_dataclass_defaults():
    assert parse() == Example()


@pytest.mark.parametrize(
    ("argv", "expected"),
    [(["--fast"], True), (["--no-fast"], False), (["--fast", "false"], False), (["--fast", "yes"], True)],
)
def test_booleans_take_flag_no_flag_and_the_old_true_false(argv, expected):
    assert parse(*argv).fast is expected


def test_a_boolean_refuses_other_words():
    with pytest.raises(argparse.ArgumentError, match="expected true or false, not 'maybe'"):
        parse("--fast", "maybe")


def test_lists_repeated_options_optionals_and_choices():
    config = parse("--data", "a", "--data", "b", "--ops", "Conv", "Add", "--limit", "3", "--mode", "b")
    assert config == Example(data=[Path("a"), Path("b")], ops=["Conv", "Add"], limit=3, mode="b")
    with pytest.raises(argparse.ArgumentError, match="invalid choice: 'c'"):
        parse("--mode", "c")


@pytest.mark.parametrize(
    ("argv", "config_cls"),
    [
        (["train", "photo"], PhotoTrainConfig),
        (["train", "risk", "--no-track"], RiskModelConfig),
        (["export", "photo-int8"], QuantizeConfig),
    ],
)
def test_every_command_parses_to_its_config_defaults(argv, config_cls):
    args = build_parser().parse_args(argv)
    values = {name: getattr(args, name) for name in vars(config_cls()) if getattr(args, name, None) is not None}
    assert config_cls(**values) == config_cls()


def test_risk_monotone_keeps_its_old_spelling_and_gains_the_flag_form():
    parser = build_parser()
    assert parser.parse_args(["train", "risk", "--monotone", "false"]).monotone is False
    assert parser.parse_args(["train", "risk", "--no-monotone"]).monotone is False
