"""Security: `hfl keys create|rotate|revoke|list`, the API keys of the key file.

The key file (`security.keys_file`, default var/keys.json, mode 0600) keeps salted
hashes only; `create` and `rotate` print the new token once. Managing keys is the key
file owner's right (the admin's): whoever may write that file may change who acts.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
import time

from connectors.keyfile import load_keys, save_keys
from dataflows.commands.context import current_settings
from risk.access import ApiKey, Role, new_key, revoke
from risk.domain import AuditEvent
from risk.domain.error import HflError
from risk.domain.ids import stable_id

_SHOWN_ONCE = "store it now: it is shown once and kept only as a salted hash"


def _audit(action: str, key: ApiKey, detail: dict[str, object]) -> None:
    """Best effort: an audit row for a key change (the key file is the record of truth;
    a broker that is down only costs the row, said on stderr)."""
    from connectors.kafka.producer import CheckedProducer
    from dataflows.flows.routing import to_outbound

    settings = current_settings()
    now = time.time_ns()
    event = AuditEvent(
        audit_id=stable_id("keys", action, key.key_id, now),
        actor=f"key-file:{getpass.getuser()}",
        action=action,
        subject=key.name,
        reason=f"{key.role} key {key.key_id}",
        detail=json.dumps({"key_id": key.key_id, "role": str(key.role)} | detail),
        ts_event=now,
        ts_init=now,
    )
    try:
        producer = CheckedProducer(settings.kafka.bootstrap, message_timeout_ms=3000)
        records = to_outbound(settings.kafka.topic_prefix)([event])
        producer.send(record for _, record in records)
    except HflError as exc:
        print(f"hfl keys: audit row not published ({exc})", file=sys.stderr)


def _active(keys: list[ApiKey], name: str) -> list[ApiKey]:
    return [key for key in keys if key.name == name and key.active]


def _create(args: argparse.Namespace) -> int:
    path = current_settings().security.keys_file
    keys = load_keys(path)
    if _active(keys, args.name):
        print(
            f"hfl keys create: an active key named {args.name!r} exists; rotate it", file=sys.stderr
        )
        return 2
    key, token = new_key(args.name, Role(args.role), created_ns=time.time_ns())
    save_keys(path, [*keys, key])
    _audit("key_created", key, {})
    print(f"created {key.role} key {key.name} ({key.key_id}) in {path}; {_SHOWN_ONCE}:")
    print(token)
    return 0


def _rotate(args: argparse.Namespace) -> int:
    path = current_settings().security.keys_file
    keys = load_keys(path)
    old = _active(keys, args.name)
    if not old:
        print(f"hfl keys rotate: no active key named {args.name!r}", file=sys.stderr)
        return 2
    now = time.time_ns()
    key, token = new_key(args.name, old[0].role, created_ns=now)
    retired = {k.key_id for k in old}
    save_keys(path, [revoke(k, revoked_ns=now) if k.key_id in retired else k for k in keys] + [key])
    _audit("key_rotated", key, {"revoked": sorted(retired)})
    revoked = ", ".join(sorted(retired))
    print(f"rotated {key.name}: {revoked} revoked, {key.key_id} active; {_SHOWN_ONCE}:")
    print(token)
    return 0


def _revoke(args: argparse.Namespace) -> int:
    path = current_settings().security.keys_file
    keys = load_keys(path)
    hit = [k for k in keys if k.active and args.name in (k.name, k.key_id)]
    if not hit:
        print(f"hfl keys revoke: no active key {args.name!r}", file=sys.stderr)
        return 2
    now = time.time_ns()
    ids = {k.key_id for k in hit}
    save_keys(path, [revoke(k, revoked_ns=now) if k.key_id in ids else k for k in keys])
    for key in hit:
        _audit("key_revoked", key, {})
    print(f"revoked {', '.join(sorted(ids))} ({args.name}); commands signed with it are refused")
    return 0


def _list(args: argparse.Namespace) -> int:
    path = current_settings().security.keys_file
    print(f"{'key id':<14} {'name':<20} {'role':<8} {'created (UTC)':<20} state")
    for key in load_keys(path):
        created = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(key.created_ns / 1e9))
        state = "active" if key.active else "revoked"
        print(f"{key.key_id:<14} {key.name:<20} {key.role:<8} {created:<20} {state}")
    return 0


def add(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `hfl keys create|rotate|revoke|list`."""
    keys = sub.add_parser("keys", help="API keys (roles viewer, trader, risk, admin)")
    action = keys.add_subparsers(dest="keys_action", required=True)
    create = action.add_parser("create", help="make a key; prints its token once")
    create.add_argument("--role", required=True, choices=[role.value for role in Role])
    create.add_argument("--name", required=True, help="who holds it (the actor in audit rows)")
    create.set_defaults(run=_create)
    rotate = action.add_parser("rotate", help="replace a key: the old one is revoked at once")
    rotate.add_argument("--name", required=True)
    rotate.set_defaults(run=_rotate)
    revoke_parser = action.add_parser("revoke", help="revoke a key by name or key id")
    revoke_parser.add_argument("--name", required=True, help="the key's name or id")
    revoke_parser.set_defaults(run=_revoke)
    listing = action.add_parser("list", help="the keys, without secrets")
    listing.set_defaults(run=_list)
