"""`ankang keys create --role ROLE [--holder NAME]`, `ankang keys list` and `ankang keys revoke KEY_ID`.

Service commands: they run in the serving-only install (`make run`'s), registered by `ankang_cli`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from serving.auth import new_key, read_keys_file, update_keys_file
from serving.settings import ServingSettings

CREATE_DESCRIPTION = """\
Create an API key for the Ankang service and print it once; only a salted SHA-256 digest is
stored (in the keys file, default var/api_keys.json or $ANKANG_API_KEYS_FILE). The running
server picks new keys up on its next request, no restart needed.

Roles:  intake    POST /v1/photos/assess, /v1/enterprises/score, /v1/enterprises/score-file
        reviewer  /v1/review/... and the review page /review
        enterprise  its own rectification orders at /v1/orders/ (start, proof photo); needs --enterprise-id
        admin     /v1/admin/... (model reload) and everything above (reviewers also see every order)

Reviewer and admin keys belong to one person, named with --holder (e.g. --holder 王安全): the
review page shows who is signed in and every decision records the key id and its holder.

Use:    curl -H "Authorization: Bearer KEY" ...   (or -H "X-API-Key: KEY")"""


def _keys_file_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--keys-file",
        type=Path,
        default=None,
        help="keys file (default: $ANKANG_API_KEYS_FILE or $ANKANG_DATA_DIR/api_keys.json, var/api_keys.json)",
    )


def register(verb) -> None:
    create = verb("keys").add_parser(
        "create",
        help="create a key for a role and print it once",
        description=CREATE_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    create.add_argument(
        "--role", required=True, choices=["intake", "reviewer", "admin", "enterprise"], help="what the key may do"
    )
    create.add_argument("--enterprise-id", default="", help="role enterprise: the one enterprise the key answers for")
    create.add_argument(
        "--holder", default="", help="the person the key belongs to (required for reviewer and admin keys), e.g. 王安全"
    )
    create.add_argument("--label", default="", help="a note on the key, e.g. 'wechat intake bot' or 'Zhang's laptop'")
    _keys_file_argument(create)
    create.set_defaults(func=run_create)
    listing = verb("keys").add_parser(
        "list",
        help="list keys (id, role, holder, created, label; never the keys)",
        description="List the keys in the keys file. Keys themselves are not stored.",
    )
    _keys_file_argument(listing)
    listing.set_defaults(func=run_list)
    revoke = verb("keys").add_parser(
        "revoke",
        help="revoke a key by its id (takes effect on the next request)",
        description="Remove a key from the keys file; sessions signed in with it end too.",
    )
    revoke.add_argument("key_id", help="the 8-character id shown by `ankang keys list`")
    _keys_file_argument(revoke)
    revoke.set_defaults(func=run_revoke)


def _path(args: argparse.Namespace) -> Path:
    return args.keys_file or ServingSettings.from_env().resolved_api_keys_file


def run_create(args: argparse.Namespace) -> int:
    path = _path(args)
    try:
        key, record = new_key(role=args.role, holder=args.holder, label=args.label, enterprise_id=args.enterprise_id)
    except ValueError as error:
        print(f"ankang keys create: {error}", file=sys.stderr)
        return 2
    update_keys_file(path, lambda records: [*records, record])
    held = f" held by {record.holder}" if record.holder else ""
    print(f"created {args.role} key {record.key_id}{held} in {path}")
    print("store it now; it is not shown again:")
    print(key)
    return 0


def run_list(args: argparse.Namespace) -> int:
    path = _path(args)
    records = read_keys_file(path)
    if not records:
        print(f"no keys in {path}; create one with `ankang keys create --role intake`")
        return 0
    print(f"{'id':10s}{'role':10s}{'holder':20s}{'created':27s}label")
    for record in records:
        print(f"{record.key_id:10s}{record.role:10s}{record.holder or '-':20s}{record.created:27s}{record.label}")
    return 0


def run_revoke(args: argparse.Namespace) -> int:
    path = _path(args)
    revoked = []

    def without_key(records):
        revoked.extend(record for record in records if record.key_id == args.key_id)
        return [record for record in records if record.key_id != args.key_id]

    update_keys_file(path, without_key)
    if not revoked:
        print(f"no key with id {args.key_id} in {path}; see `ankang keys list`")
        return 1
    print(f"revoked key {args.key_id}")
    return 0
