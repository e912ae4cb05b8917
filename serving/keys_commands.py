"""`ankang keys create --role ROLE [--holder NAME]`, `ankang keys list` and `ankang keys revoke KEY_ID`.

Service commands: they run in the serving-only install (`make run`'s), registered by `ankang_cli`."""

from __future__ import annotations

import argparse
import sys

import sqlalchemy as sa

from serving.auth import new_key
from serving.auth.key_table import active_keys, insert_keys, open_key_database, revoke_key, where
from serving.auth.keys import REFRESH_SECONDS
from serving.db import utcnow
from serving.settings import ServingSettings
from serving.text_table import aligned

CREATE_DESCRIPTION = """\
Create an API key for the Ankang service and print it once; only a salted SHA-256 digest is
stored, in the review store's database (SQLite under $ANKANG_DATA_DIR, default var/, or
$ANKANG_DATABASE_URL). Every running replica accepts it within a few seconds, no restart needed.
A keys file left from before (var/api_keys.json or $ANKANG_API_KEYS_FILE) is imported once.

Roles:  intake    POST /v1/photos/assess, /v1/enterprises/score, /v1/enterprises/score-file
        reviewer  /v1/review/... and the review page /review
        enterprise  its own rectification orders at /v1/orders/ (start, proof photo); needs --enterprise-id
        admin     /v1/admin/... (model reload) and everything above (reviewers also see every order)

Reviewer and admin keys belong to one person, named with --holder (e.g. --holder 王安全): the
review page shows who is signed in and every decision records the key id and its holder.

Use:    curl -H "Authorization: Bearer KEY" ...   (or -H "X-API-Key: KEY")"""


def register(verb) -> None:
    create = verb("keys").add_parser(
        "create",
        help="create a key for a role and print it once",
        description=CREATE_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    create.add_argument(
        "--role",
        required=True,
        choices=["intake", "reviewer", "admin", "enterprise", "informant"],
        help="what the key may do",
    )
    create.add_argument("--enterprise-id", default="", help="role enterprise: the one enterprise the key answers for")
    create.add_argument(
        "--holder", default="", help="the person the key belongs to (required for reviewer and admin keys), e.g. 王安全"
    )
    create.add_argument("--label", default="", help="a note on the key, e.g. 'wechat intake bot' or 'Zhang's laptop'")
    create.set_defaults(func=run_create)
    listing = verb("keys").add_parser(
        "list",
        help="list keys (id, role, holder, bound enterprise, created, label; never the keys)",
        description="List the unrevoked keys in the database. Keys themselves are not stored.",
    )
    listing.set_defaults(func=run_list)
    revoke = verb("keys").add_parser(
        "revoke",
        help=f"revoke a key by its id (every replica refuses it within {REFRESH_SECONDS:g} s)",
        description="Mark a key revoked in the database; sessions signed in with it end too.",
    )
    revoke.add_argument("key_id", help="the 8-character id shown by `ankang keys list`")
    revoke.set_defaults(func=run_revoke)


def _database() -> sa.Engine:
    """The settings' database (ANKANG_DATA_DIR / ANKANG_DATABASE_URL), saying so if a keys file was imported."""
    engine, imported = open_key_database(ServingSettings.from_env())
    if imported is not None:
        print(f"ankang keys: {imported.message}", file=sys.stderr)
    return engine


def run_create(args: argparse.Namespace) -> int:
    try:
        key, record = new_key(role=args.role, holder=args.holder, label=args.label, enterprise_id=args.enterprise_id)
    except ValueError as error:
        print(f"ankang keys create: {error}", file=sys.stderr)
        return 2
    engine = _database()
    if not insert_keys(engine, [record]):
        print(f"ankang keys create: key id {record.key_id} is taken (1 in 4 billion); run it again", file=sys.stderr)
        return 1
    held = f" held by {record.holder}" if record.holder else ""
    print(f"created {args.role} key {record.key_id}{held} in {where(engine)}")
    print("store it now; it is not shown again:")
    print(key)
    return 0


def run_list(args: argparse.Namespace) -> int:
    engine = _database()
    records = active_keys(engine)
    if not records:
        print(f"no keys in {where(engine)}; create one with `ankang keys create --role intake`")
        return 0
    rows = [
        [record.key_id, record.role, record.holder or "-", record.enterprise_id or "-", record.created, record.label]
        for record in records
    ]
    print(aligned(["id", "role", "holder", "enterprise", "created", "label"], rows))
    return 0


def run_revoke(args: argparse.Namespace) -> int:
    engine = _database()
    now = utcnow()
    revoked_at = revoke_key(engine, args.key_id, now=now)
    if revoked_at is None:
        print(f"no key with id {args.key_id} in {where(engine)}; see `ankang keys list`", file=sys.stderr)
        return 1
    if revoked_at != now:
        print(f"key {args.key_id} was already revoked at {revoked_at:%Y-%m-%d %H:%M:%S} UTC", file=sys.stderr)
        return 1
    print(f"revoked key {args.key_id}; every replica refuses it within {REFRESH_SECONDS:g} s")
    return 0
