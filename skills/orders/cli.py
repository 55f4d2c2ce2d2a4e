"""``python -m bot orders import FILE.csv`` and ``orders bind EXTERNAL_ID WXID``: written to the database; the
running bot picks up the reminders within a minute. ``bind`` merges the member the shop's id named before into the
WeChat id's member (ids and points, through the ledger: storage/identity.py ``merge``), as /绑定会员 does."""

from __future__ import annotations

import argparse
import sys

from bot.cli import CliContext
from bot.http import FieldError
from skills.orders import bind_shop_member, skill
from skills.orders.csv_import import import_csv
from skills.orders.input import parse_binding


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["import", "bind"])
    parser.add_argument("args", nargs="+")


@skill.cli("orders", help="orders: import FILE.csv (good rows in, bad ones reported by line); bind EXTERNAL_ID WXID",
           arguments=_arguments)
async def orders_cli(cli: CliContext) -> int:
    action, args = cli.args.action, cli.args.args
    if action == "bind" and len(args) != 2:
        print("usage: python -m bot orders bind EXTERNAL_MEMBER_ID WECHAT_ID", file=sys.stderr)
        return 2
    if action == "import" and len(args) != 1:
        print("usage: python -m bot orders import FILE.csv", file=sys.stderr)
        return 2
    if action == "bind":
        try:
            external_id, wechat_id = parse_binding(args[0], args[1])
        except FieldError as exc:
            print(f"orders bind: {exc}", file=sys.stderr)
            return 2
    async with cli.services() as services:
        if action == "bind":
            done = await bind_shop_member(services, external_id, wechat_id)
            print(f"bound {external_id} -> {wechat_id}; {done.orders} waiting orders now have the WeChat id")
            if done.merged is not None:
                print(f"merged member {done.merged_from} into {done.member_id} (the same person, one wallet): "
                      f"{done.merged.moved} points moved through the ledger, balance now {done.merged.balance}, "
                      f"{done.merged.relinked} ids relinked; one transaction, binding again moves nothing")
            else:
                print(f"{external_id} named no other member: nothing to merge")
            return 0
        try:
            report = await import_csv(services, args[0])
        except OSError as exc:
            print(f"{args[0]}: cannot read: {exc.strerror}", file=sys.stderr)
            return 2
    for line, problem in report.errors:
        print(f"{args[0]}: line {line}: {problem}", file=sys.stderr)
    print(f"imported {report.applied}, already there {report.duplicate}, older than the stored status "
          f"{report.stale}, bad rows {report.bad_rows} (read as {report.encoding})")
    return 1 if report.errors else 0
