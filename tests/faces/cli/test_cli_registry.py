"""The lazy command registry (qadmin/cli/registry.py) says exactly what the modules define: every
command the modules make is registered under its own name, and the help line `qadmin --help`
prints from the registry, without importing a command, is the one the command itself gives."""

from __future__ import annotations

import importlib
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import click
import pytest

import qadmin.cli
from qadmin.cli import main
from qadmin.cli.registry import COMMANDS, Entry, LazyCommands, load

ROOT = Path(__file__).resolve().parents[3]
#: widths a help line is cut to (click cuts at a word, or at the first sentence's end)
LIMITS = range(1, 240)


def top_level_commands() -> dict[str, click.Command]:
    """Every click command a module of qadmin.cli defines that is not a subcommand of a group."""
    found: dict[int, click.Command] = {}
    for info in pkgutil.iter_modules(qadmin.cli.__path__):
        module = importlib.import_module(f"qadmin.cli.{info.name}")
        for value in vars(module).values():
            if isinstance(value, click.Command) and value is not main:
                found[id(value)] = value
    nested = {
        id(sub) for command in found.values() if isinstance(command, click.Group) for sub in command.commands.values()
    }
    return {c.name or "": c for key, c in found.items() if key not in nested}


def test_every_command_of_the_modules_is_registered_under_its_name() -> None:
    defined = top_level_commands()
    assert set(defined) == set(COMMANDS)
    for name, entry in COMMANDS.items():
        command = load(entry)
        assert command is defined[name], name
        assert command.name == name
        assert not command.hidden, f"{name}: the registry lists every command in --help"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_the_registered_help_line_is_the_commands_own(name: str) -> None:
    command = load(COMMANDS[name])
    lazy = LazyCommands({name: COMMANDS[name]})
    for limit in LIMITS:
        assert lazy.short_help(name, limit) == command.get_short_help_str(limit), (name, limit)


def test_help_lists_every_command_as_the_commands_say_without_importing_them() -> None:
    # in a fresh process, so that no command module is imported before `--help` is written
    code = (
        "import json, sys, click\n"
        "from qadmin.cli import main\n"
        "from qadmin.cli.registry import COMMANDS, load\n"
        "def text(group):\n"
        "    return group.get_help(click.Context(group, info_name='qadmin', terminal_width=100))\n"
        "lazy = text(main)\n"
        "imported = sorted(m for m in sys.modules if m.startswith('qadmin.cli.')"
        " and m.rsplit('.', 1)[1] in {e.module for e in COMMANDS.values()})\n"
        "eager = click.Group('qadmin', params=main.params, help=main.help, context_settings=main.context_settings,"
        " commands={name: load(entry) for name, entry in COMMANDS.items()})\n"
        "print(json.dumps({'lazy': lazy, 'imported': imported, 'eager': text(eager)}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    shown = json.loads(proc.stdout)
    assert shown["imported"] == [], f"--help imported command modules: {shown['imported']}"
    # click's own help of the same commands, each read from the command itself
    assert shown["lazy"] == shown["eager"]
    listed = [line.split()[0] for line in shown["lazy"].split("Commands:\n", 1)[1].splitlines() if line.strip()]
    assert listed == sorted(COMMANDS)


def test_lazy_commands_is_a_mapping_of_loaded_commands() -> None:
    commands = LazyCommands({"jobs": Entry("jobs", "jobs", "List jobs, one keyset page at a time.")})
    assert list(commands) == ["jobs"] and len(commands) == 1 and "jobs" in commands
    assert not commands.loaded
    assert commands["jobs"].name == "jobs" and "jobs" in commands.loaded
    extra = click.Command("extra")
    commands["extra"] = extra
    assert list(commands) == ["jobs", "extra"] and commands["extra"] is extra
    del commands["jobs"]
    assert list(commands) == ["extra"] and commands.get("jobs") is None
    with pytest.raises(KeyError):
        del commands["jobs"]
