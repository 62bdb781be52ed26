"""`hfl --help` shows every command once, under its group."""

from __future__ import annotations

from dataflows.commands import GROUPS, parser


def test_help_lists_every_group_with_its_commands() -> None:
    help_text = parser().format_help()
    for name, _ in GROUPS:
        assert f"\n  {name} " in help_text
    for command in ("demo", "kill", "models", "up", "status", "bench"):
        assert command in help_text.split("command groups:")[1]


def test_each_command_belongs_to_exactly_one_group() -> None:
    epilog = parser().epilog or ""
    listed = [
        c.strip() for line in epilog.splitlines()[1:] for c in line.split(None, 1)[1].split(",")
    ]
    assert len(listed) == len(set(listed))
    assert set(listed) == set(parser()._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
