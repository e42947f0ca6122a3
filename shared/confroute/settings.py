"""How a process's settings are read: one builder for the edge agent and the cloud service.

Each setting is a command-line flag and an environment variable with the process's prefix
(``--cloud-deadline`` / ``CONFROUTE_EDGE_CLOUD_DEADLINE``); the flag wins over the variable, the variable
over the default. Flags are declared with default None so that the variable and the default show
through. Every raw value goes through :func:`convert`, so a bad value fails the same way on both sides:
:class:`InvalidInput` naming the flag or variable it came from, with ``field`` the setting's name.

Booleans have one spelling list on both sides: ``1 true yes on`` and ``0 false no off`` (any case).
A list-valued setting repeats its flag, and its variable separates the items with ``separator``.
Nothing here reads the environment or argv by itself: ``main()`` passes both in.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confroute.errors import InvalidInput

TRUE = ("1", "true", "yes", "on")
FALSE = ("0", "false", "no", "off")
KINDS = ("str", "int", "float", "bool", "path")


@dataclass(frozen=True)
class Setting:
    """One setting: the attribute it fills, how its text is read, its default and its help."""

    name: str
    kind: str = "str"  # one of KINDS; a list setting holds items of this kind
    default: Any = None  # None: the builder decides (e.g. a folder under the cache)
    help: str = ""
    flag: str | None = ""  # "": --<name with dashes>; None: no flag (secrets: they would show in `ps`)
    env: str = ""  # the variable after the prefix; "": NAME in capitals
    separator: str | None = None  # set for a list: the flag repeats, the variable is split on it
    choices: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"setting {self.name}: kind must be one of {KINDS}, got {self.kind!r}")

    @property
    def flag_name(self) -> str | None:
        """The flag, or None for a setting read from the environment only."""
        if self.flag is None:
            return None
        return self.flag or "--" + self.name.replace("_", "-")

    def env_name(self, prefix: str) -> str:
        return prefix + (self.env or self.name.upper())


def parse_bool(raw: str, source: str, field: str | None = None) -> bool:
    """``raw`` as a boolean; InvalidInput naming ``source`` (a flag or variable) for anything else."""
    lowered = raw.strip().lower()
    if lowered in TRUE:
        return True
    if lowered in FALSE:
        return False
    raise InvalidInput(f"{source} must be a boolean ({' '.join(TRUE)} or {' '.join(FALSE)}), got {raw!r}",
                       field=field or source)


def split_address(address: str, name: str = "address") -> tuple[str, int]:
    """``"127.0.0.1:50051"`` -> ``("127.0.0.1", 50051)``; ``[::1]:0`` works too (every ``--listen``)."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise InvalidInput(f"{name} must be host:port with a port in [0, 65535], got {address!r}", field=name)
    return host.strip("[]"), int(port)


def convert(raw: str, setting: Setting, source: str) -> Any:
    """One value of ``setting`` from its text, as read from ``source``."""
    if setting.choices and raw not in setting.choices:
        raise InvalidInput(f"{source} must be one of {setting.choices}, got {raw!r}", field=setting.name)
    if setting.kind == "bool":
        return parse_bool(raw, source, setting.name)
    if setting.kind == "path":
        return Path(raw)
    if setting.kind in ("int", "float"):
        try:
            return int(raw) if setting.kind == "int" else float(raw)
        except ValueError as exc:
            raise InvalidInput(f"{source} must be a number, got {raw!r}", field=setting.name) from exc
    return raw


def add_flags(parser: argparse.ArgumentParser, settings: Iterable[Setting], prefix: str) -> None:
    """A flag per setting that has one, with default None; the help names the default and the variable."""
    for setting in settings:
        flag = setting.flag_name
        if flag is None:
            continue
        shown = "" if setting.default in (None, ()) else f"default {setting.default!r}; "
        help_text = f"{shown}env {setting.env_name(prefix)}"
        if setting.help:
            help_text = f"{setting.help}; {help_text}"
        help_text = help_text.replace("%", "%%")
        if setting.kind == "bool":
            parser.add_argument(flag, dest=setting.name, action=argparse.BooleanOptionalAction, default=None,
                                help=help_text)
        elif setting.separator is not None:
            parser.add_argument(flag, dest=setting.name, action="append", default=None,
                                metavar=setting.name.upper(), help=f"repeatable; {help_text}")
        else:
            parser.add_argument(flag, dest=setting.name, default=None, metavar=setting.name.upper(), help=help_text)


def resolve(settings: Iterable[Setting], args: argparse.Namespace, environ: Mapping[str, str], prefix: str
            ) -> dict[str, Any]:
    """Every setting's value: its flag if given, else its variable if set, else its default."""
    return {setting.name: _value(setting, args, environ, prefix) for setting in settings}


def _value(setting: Setting, args: argparse.Namespace, environ: Mapping[str, str], prefix: str) -> Any:
    raw = getattr(args, setting.name, None) if setting.flag_name is not None else None
    source = setting.flag_name or ""
    if raw is None:
        source = setting.env_name(prefix)
        raw = environ.get(source)
    if raw is None:
        return setting.default
    if setting.separator is None:
        return raw if not isinstance(raw, str) else convert(raw, setting, source)  # argparse typed booleans
    items: Sequence[str] = raw if isinstance(raw, list) else raw.split(setting.separator)
    return tuple(convert(item.strip(), setting, source) for item in items if item.strip())


def settings_of(config_type: type, exclude: Iterable[str] = ()) -> tuple[Setting, ...]:
    """The settings of a flat config dataclass: one per field, ``help`` (and a ``flag`` spelled otherwise than
    the field's name) from the field's metadata."""
    skipped = set(exclude)
    return tuple(
        Setting(spec.name, _kind(str(spec.type)), spec.default, spec.metadata.get("help", ""),
                spec.metadata.get("flag", ""))
        for spec in dataclasses.fields(config_type)
        if spec.name not in skipped
    )


def _kind(type_name: str) -> str:
    return type_name if type_name in KINDS else "str"  # Literal aliases (PromptFormat, EventLoop) are text


def markdown_table(settings: Iterable[Setting], prefix: str) -> str:
    """The settings as a Markdown table: flag, variable, default, meaning."""
    rows = ["| Flag | Environment variable | Default | Meaning |", "| --- | --- | --- | --- |"]
    for setting in settings:
        flag = f"`{setting.flag_name}`" if setting.flag_name else "(none)"
        if setting.flag_name and setting.kind == "bool":
            flag = f"`{setting.flag_name}` / `--no-{setting.flag_name[2:]}`"
        meaning = setting.help.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")
        rows.append(f"| {flag} | `{setting.env_name(prefix)}` | {_shown(setting.default)} | {meaning} |")
    return "\n".join(rows) + "\n"


def _shown(default: Any) -> str:
    if default in (None, ()):
        return ""
    if default == "":
        return "(empty)"
    return f"`{str(default).lower() if isinstance(default, bool) else default}`"
