"""Models: the registry (list, show, promote, rollback) and warm-start checkpoints."""

from __future__ import annotations

import argparse

from dataflows.commands.context import current_settings, running_settings
from risk.domain.error import HflError


def _models(args: argparse.Namespace) -> int:
    from dataflows.ops import model_command as mc
    from risk.domain import ModelAction

    if args.action in ("show", "promote") and not args.model:
        raise HflError(f"models {args.action} needs a model name")
    promote_or_rollback = args.action in ("promote", "rollback")
    settings = running_settings() if promote_or_rollback else current_settings()
    if args.model and args.model not in settings.model.pipelines:
        known = ", ".join(sorted(settings.model.pipelines))
        raise HflError(f"no model named {args.model!r} (configured: {known})")
    if args.instrument and args.instrument not in settings.trading.instruments:
        known = ", ".join(settings.trading.instruments)
        raise HflError(f"no instrument {args.instrument!r} is traded (traded: {known})")
    if args.action == "list":
        print(mc.list_models(settings, args.instrument))
    elif args.action == "checkpoints":
        from dataflows.ops.model_checkpoint import list_checkpoints

        print(list_checkpoints(settings, args.instrument))
    elif args.action == "show":
        print(mc.show_model(settings, args.model, args.instrument))
    else:
        command = mc.model_command(
            ModelAction(args.action),
            model=args.model or "",
            instrument=args.instrument,
            actor="",  # the signing key's name (send_command)
            reason=args.reason,
        )
        mc.send_command(settings, command)
        print(f"sent {command.action} {command.model} ({command.command_id})")
    return 0


def add(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `hfl models list|show|promote|rollback|checkpoints`."""
    models = sub.add_parser(
        "models",
        help="model registry: list, show, promote, rollback, checkpoints (warm start:"
        " set model.warm_start to latest or a checkpoint id)",
    )
    models.add_argument("action", choices=("list", "show", "promote", "rollback", "checkpoints"))
    models.add_argument("model", nargs="?", help="show/promote: the model name")
    models.add_argument("--instrument", default="", help="one instrument (default: all)")
    models.add_argument("--reason", default="manual")
    models.set_defaults(run=_models)
