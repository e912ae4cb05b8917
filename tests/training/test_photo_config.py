"""`ankang train photo` options come from PhotoTrainConfig; every field is overridable."""

import dataclasses
from pathlib import Path

import pytest

from ankang_cli import build_parser
from training.photo.config import DEFAULT_DATA, PhotoTrainConfig, config_from_args


def parse(*argv):
    return build_parser(("training.photo.commands",)).parse_args(["train", "photo", *argv])


def test_defaults_come_from_the_dataclass():
    assert config_from_args(parse()) == PhotoTrainConfig()
    assert PhotoTrainConfig().data == [DEFAULT_DATA]


def test_every_field_is_an_option_and_data_repeats():
    config = config_from_args(
        parse(
            "--data",
            "a",
            "--data",
            "b",
            "--image-size",
            "320",
            "--epochs",
            "3",
            "--lr",
            "0.01",
            "--limit",
            "40",
            "--bf16",
            "--no-tta-flip",
            "--out",
            "x",
        )
    )
    assert config.data == [Path("a"), Path("b")] and config.image_size == 320 and config.epochs == 3
    assert config.lr == 0.01 and config.limit == 40 and config.bf16 and not config.tta_flip
    assert config.out == Path("x")
    help_text = build_parser(("training.photo.commands",))._subparsers._group_actions[0].choices["train"]
    options = help_text._subparsers._group_actions[0].choices["photo"].format_help()
    for spec in dataclasses.fields(PhotoTrainConfig):
        assert "--" + spec.name.replace("_", "-") in options


def test_bad_option_values_are_refused(capsys):
    with pytest.raises(SystemExit):
        parse("--epochs", "three")
    assert "invalid int value: 'three'" in capsys.readouterr().err


def test_export_size_is_the_final_size_or_the_training_size():
    assert PhotoTrainConfig(image_size=224, final_size=320).export_size == 320
    assert PhotoTrainConfig(image_size=224, final_size=320, final_epochs=2).export_size == 320
    assert PhotoTrainConfig(image_size=224, final_size=0, final_epochs=2).export_size == 224
    assert PhotoTrainConfig(epochs=9, final_epochs=2).total_epochs == 11


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"image_size": 0}, "image_size must be at least 1, got 0"),
        ({"epochs": 0}, "epochs must be at least 1, got 0"),
        ({"final_epochs": -1}, "final_epochs must not be negative, got -1"),
        ({"crop_source_size": -448}, "crop_source_size must not be negative, got -448"),
    ],
)
def test_bad_config_values_are_refused_with_exact_messages(fields, message):
    with pytest.raises(ValueError, match=f"^{message}$"):
        PhotoTrainConfig(**fields)
