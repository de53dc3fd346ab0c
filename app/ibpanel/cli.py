"""Command line: ``ibpanel`` (the window), ``ibpanel --demo``, ``ibpanel serve`` (REST API, no window).

The practice exchange on its own is ``ibpanel-sim`` (see ibpanel.sim.cli).
Each front end is imported only when chosen, so ``ibpanel serve`` never loads Qt.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ibpanel import __version__
from ibpanel.argtypes import api_token, connect_port, listen_port, whole_number


def _add_api_options(parser: argparse.ArgumentParser, *, default_on: bool) -> None:
    group = parser.add_argument_group("local REST API")
    if not default_on:
        group.add_argument("--api", action="store_true", help="also serve the local REST API (/api/ibkr/...)")
    group.add_argument("--api-host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    group.add_argument("--api-port", type=listen_port, default=5000, help="port to bind (default 5000)")
    group.add_argument(
        "--api-token",
        type=api_token,
        default=None,
        help="bearer token clients must send; required when binding anything but 127.0.0.1 "
        "(or set IBPANEL_API_TOKEN)",
    )


def _add_connection_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("connection")
    group.add_argument("--demo", action="store_true", help="start the built-in practice exchange and connect to it")
    group.add_argument("--seed", type=whole_number, default=None, help="practice exchange price seed (reproducible runs)")
    group.add_argument(
        "--reset-practice",
        action="store_true",
        help="start the practice account over (fresh cash, no positions or orders); the practice journal is kept",
    )
    group.add_argument("--replay", metavar="FILE", default=None,
                       help="practice on a recorded day (.ibrec) or a CSV of bars (.csv) instead of random prices; "
                       "implies --demo")
    group.add_argument("--replay-speed", type=float, default=1.0, metavar="X", help="replay speed, 1 to 60 (default 1)")
    group.add_argument("--replay-from", metavar="TIME", default=None,
                       help="start the replay at TIME: HH:MM or 'YYYY-MM-DD HH:MM' (the first market's time)")
    group.add_argument("--tws-host", default=None, help="TWS / IB Gateway host to connect to at start")
    group.add_argument("--tws-port", type=connect_port, default=None, help="TWS / IB Gateway port to connect to at start")
    group.add_argument("--client-id", type=whole_number, default=None, help="API client id")
    group.add_argument("--account", default=None, help="account to use when several are managed")
    group.add_argument("--readonly", action="store_true", help="connect read-only: no order can be sent")
    group.add_argument("--profile", default="default", help="settings profile (separate settings, journal, logs)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ibpanel", description="IB Panel: trade US and Hong Kong stocks through TWS / IB Gateway.")
    parser.add_argument("--version", action="version", version=f"ibpanel {__version__}")
    _add_connection_options(parser)
    _add_api_options(parser, default_on=False)
    ui = parser.add_argument_group("window")
    ui.add_argument("--screenshot", metavar="PATH", default=None, help="render the populated window to PATH (PNG) and exit; with --demo it first places sample practice "
                    "trades (market buys and resting limit orders on the practice exchange) so the tables show rows")
    ui.add_argument("--tab", default=None, help="tab to show first / to screenshot (connection, account, positions, orders, ticket, quotes, practice)")
    ui.add_argument("--smoke-test", action="store_true", help="build every tab, connect to the practice exchange, print a marker, exit 0")
    sub = parser.add_subparsers(dest="command")
    serve = sub.add_parser("serve", help="run the local REST API without a window")
    _add_connection_options(serve)
    _add_api_options(serve, default_on=True)
    serve.add_argument("--host", dest="api_host_alias", default=None, help="same as --api-host")
    serve.add_argument("--port", dest="api_port_alias", type=listen_port, default=None, help="same as --api-port")
    journal = sub.add_parser("journal", help="the order journal: every order the panel or the API submitted")
    journal_sub = journal.add_subparsers(dest="journal_command", required=True)
    export = journal_sub.add_parser("export", help="write the journal to a CSV file")
    export.add_argument("path", help="CSV file to write")
    export.add_argument("--profile", default="default", help="settings profile whose journal to export")
    export.add_argument("--practice", action="store_true", help="the practice exchange's journal instead of the real one")
    return parser


def export_journal(path: str, profile: str, practice: bool = False) -> int:
    """``ibpanel journal export PATH``: the profile's order journal as CSV (works while the panel runs: WAL)."""
    from ibpanel.broker.journal import OrderJournal, default_journal_path, practice_journal_path

    source = default_journal_path(profile)
    if practice:
        source = practice_journal_path(source)
    if not source.exists():
        print(f"ibpanel: no order journal yet for profile {profile!r} ({source}): nothing was ever submitted.", file=sys.stderr)
        return 1
    journal = OrderJournal(source)
    try:
        rows = journal.export_csv(Path(path))
    finally:
        journal.close()
    print(f"ibpanel: wrote {rows} journal entries from {source} to {path}")
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse and normalise: ``serve --host/--port`` are aliases of ``--api-host/--api-port``."""
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        # "is not None": --port 0 (any free port) and an explicit --host are real choices.
        if args.api_host_alias is not None:
            args.api_host = args.api_host_alias
        if args.api_port_alias is not None:
            args.api_port = args.api_port_alias
    return args


def reset_practice(profile: str) -> bool:
    """Forget the practice account kept between practice sessions (``--reset-practice``). False when it is in use."""
    from ibpanel.paths import practice_state_path
    from ibpanel.runtime.practice import practice_owner

    owner = practice_owner(profile)
    if owner is not None:
        # The running exchange would save its account over the reset one when it stops.
        who = f"process {owner}" if owner else "another process"
        print(f"ibpanel: the practice account of profile {profile!r} is in use by {who} (IB Panel or ibpanel serve "
              "with --demo); close it first, then start over with --reset-practice.", file=sys.stderr)
        return False
    state = practice_state_path(profile)
    if state.exists():
        state.unlink()
        print(f"ibpanel: practice account for profile {profile!r} starts over ({state} removed)")
    return True


def load_replay(args: argparse.Namespace) -> int:
    """``--replay FILE``: load and check the whole file before anything starts (``args.replay_session``)."""
    from ibpanel.sim.recording import RecordingError
    from ibpanel.sim.replay import open_replay

    try:
        args.replay_session = open_replay(Path(args.replay), speed=args.replay_speed, start=args.replay_from)
    except (RecordingError, ValueError) as exc:
        print(f"ibpanel: --replay: {exc}", file=sys.stderr)
        return 2
    args.demo = True
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if getattr(args, "replay", None):
        code = load_replay(args)
        if code:
            return code
    if getattr(args, "reset_practice", False) and not reset_practice(args.profile):
        return 1
    if args.command == "journal":
        return export_journal(args.path, args.profile, args.practice)
    from ibpanel import dataclass_cache
    from ibpanel.gc_pause import pause_collector_during_start

    pause_collector_during_start()  # before the heavy imports: they are most of the start
    dataclass_cache.install()  # their dataclasses' methods, compiled at an earlier start
    if args.command == "serve":
        from ibpanel.runtime.serve import run_headless

        return run_headless(args)
    from ibpanel.ui.app import run_gui

    return run_gui(args)


if __name__ == "__main__":
    sys.exit(main())
