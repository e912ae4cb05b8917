"""Dataclass configs as command-line options: one `--field-name` per field, defaults from the dataclass.

The one generator for every training command (`ankang train photo|risk`, `ankang export photo-int8`, ...).
Booleans are `--flag` / `--no-flag` (argparse.BooleanOptionalAction); `--flag true|false`, the
risk commands' older spelling, still parses. Lists take several values (`--op-types Conv Add`), or one
per repeated option for the fields named in `repeated` (`--data a --data b`).
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any

_TRUTH = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


class BooleanFlag(argparse.BooleanOptionalAction):
    """`--flag` / `--no-flag`, and `--flag true|false` too."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.nargs = "?"
        self.metavar = "true|false"

    def __call__(self, parser, namespace, values, option_string=None):
        if option_string.startswith("--no-") or values is None:
            if option_string.startswith("--no-") and values is not None:
                raise argparse.ArgumentError(self, f"{option_string} takes no value")
            setattr(namespace, self.dest, not option_string.startswith("--no-"))
            return
        value = _TRUTH.get(values.strip().lower())
        if value is None:
            raise argparse.ArgumentError(self, f"expected true or false, not {values!r}")
        setattr(namespace, self.dest, value)


def _value_type(annotation: Any) -> tuple[Any, bool]:
    """(the element type, whether it is a list) of a field annotation such as `int | None` or `list[Path]`."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        annotation = next(arg for arg in typing.get_args(annotation) if arg is not type(None))
    if typing.get_origin(annotation) in (list, tuple):
        return typing.get_args(annotation)[0], True
    return annotation, False


def _shown(default: Any) -> str:
    if isinstance(default, bool):
        return str(default).lower()
    if isinstance(default, (list, tuple)):
        return " ".join(str(item) for item in default)
    return str(default)


def add_dataclass_arguments(
    parser: argparse.ArgumentParser,
    config_cls: type,
    *,
    help: Mapping[str, str],
    skip: Sequence[str] = (),
    choices: Mapping[str, Sequence[Any]] | None = None,
    repeated: Sequence[str] = (),
) -> None:
    """Add one option per field of `config_cls` (except `skip`), each help text ending in its default."""
    hints, defaults = typing.get_type_hints(config_cls), config_cls()
    for spec in dataclasses.fields(config_cls):
        if spec.name in skip:
            continue
        flag, default = "--" + spec.name.replace("_", "-"), getattr(defaults, spec.name)
        text = help.get(spec.name, spec.name.replace("_", " "))
        kind, is_list = _value_type(hints[spec.name])
        if kind is bool:  # BooleanOptionalAction appends the default itself
            parser.add_argument(flag, dest=spec.name, action=BooleanFlag, default=default, help=text)
            continue
        text = f"{text} (default: {_shown(default)})"
        if spec.name in repeated:
            parser.add_argument(flag, dest=spec.name, type=kind, action="append", default=None, help=text)
        else:
            parser.add_argument(
                flag,
                dest=spec.name,
                type=kind,
                nargs="+" if is_list else None,
                default=default,
                choices=(choices or {}).get(spec.name),
                help=text,
            )


def dataclass_from_args(config_cls: type, args: argparse.Namespace) -> Any:
    """The config the options describe; a repeated option never given keeps the dataclass default."""
    values = {
        spec.name: getattr(args, spec.name) for spec in dataclasses.fields(config_cls) if hasattr(args, spec.name)
    }
    return config_cls(**{name: value for name, value in values.items() if value is not None})
