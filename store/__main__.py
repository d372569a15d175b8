"""``python -m store``: the log's schema and data from a shell.

- ``migrate``: bring the schema to the code's head (the release phase and ``make run``).
- ``check``: exit 1 naming the problem when the schema is not migrated.
- ``purge``: delete what is older than LOG_RETENTION_DAYS now (the worker does it daily).
- ``erase +14155550100 …``: delete one number's calls and texts, saying how many.
"""

from __future__ import annotations

import argparse
import sys

from common.config import ConfigError, get_config
from common.config_parsers import e164


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m store", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="bring the schema to the head revision")
    sub.add_parser("check", help="exit 1 unless the schema is migrated")
    sub.add_parser("purge", help="delete what is older than LOG_RETENTION_DAYS")
    erase = sub.add_parser("erase", help="delete one number's calls and texts")
    erase.add_argument("numbers", nargs="+", metavar="+1…")
    args = parser.parse_args(argv)
    try:
        cfg = get_config()
        numbers = [e164("number", n) for n in getattr(args, "numbers", [])]
    except ConfigError as exc:
        print(f"store: {exc}", file=sys.stderr)
        return 2

    from store import db, retention

    try:
        if args.command == "migrate":
            state = db.migrate()
            print(f"store: schema at {state.current} (head {state.head})")
            return 0
        state = db.schema()
        if not state.ready:
            print(f"store: {state.problem()}", file=sys.stderr)
            return 1
        if args.command == "check":
            print(f"store: schema at {state.current}")
        elif args.command == "purge":
            removed = retention.purge(cfg.log_retention_days)
            print(f"store: removed {removed} older than {cfg.log_retention_days} days")
        else:
            for number in numbers:
                print(f"store: erased {retention.erase(number)} of {number}")
    except Exception as exc:  # an operator's command: one line, not a traceback
        print(f"store: {args.command} failed: {type(exc).__name__}: {exc}"[:500], file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
