"""``ibpanel-sim``: run the practice exchange on its own, e.g. for any IB API program to trade against.

    ibpanel-sim --port 7497 --accounts DU111111,DU222222 --seed 1 [--state FILE] [--log-requests]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from decimal import Decimal, InvalidOperation

from ibpanel.argtypes import account_ids, listen_port
from ibpanel.sim.server import SimConfig, SimServer

log = logging.getLogger("ibpanel.sim")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ibpanel-sim",
        description="Practice exchange speaking the TWS API socket protocol (server version 176). "
                    "Point ib_async, ib_insync or IB's own client at it like a paper TWS.")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=listen_port, default=7497, help="port to listen on (default 7497, TWS paper)")
    p.add_argument("--accounts", type=account_ids, default=("DU111111", "DU222222"),
                   help="comma-separated paper account ids (default DU111111,DU222222)")
    p.add_argument("--seed", type=int, default=1, help="seed of the price paths (same seed, same prices)")
    p.add_argument("--state", metavar="FILE", help="keep accounts, orders and fills in FILE across restarts")
    p.add_argument("--log-requests", action="store_true", help="log every request a client sends")
    p.add_argument("--session", choices=("always", "real"), default="always",
                   help="'always' open (default) or 'real' US / HK trading sessions incl. the HK lunch break")
    p.add_argument("--quote-interval", type=float, default=0.25, metavar="SECONDS",
                   help="seconds between quote updates (default 0.25)")
    p.add_argument("--synthetic", type=int, default=0, metavar="N",
                   help="add N generated US stocks SYM0001.. (load tests)")
    p.add_argument("--cash", action="append", default=[], metavar="CCY=AMOUNT",
                   help="starting cash per currency, e.g. --cash USD=100000 --cash HKD=500000")
    p.add_argument("--no-market-data", action="store_true",
                   help="behave like an account without market data subscriptions (354 / 10167 + delayed)")
    p.add_argument("--readonly", action="store_true", help="Read-Only API mode: order requests get error 321")
    p.add_argument("--pacing", action="store_true", help="enforce 50 messages per second (error 100)")
    p.add_argument("--refuse-for", type=float, default=0.0, metavar="SECONDS",
                   help="refuse connections for the first SECONDS (a TWS that is still starting)")
    p.add_argument("--delay-replies", type=float, default=0.0, metavar="SECONDS",
                   help="hold every reply for SECONDS (a slow TWS)")
    p.add_argument("--max-lines", type=int, default=0, metavar="N",
                   help="market data lines per client (0 = unlimited; TWS's default is 100)")
    p.add_argument("--replay", metavar="FILE", default=None,
                   help="replay a recorded day (.ibrec) or a CSV of bars (.csv) instead of random prices")
    p.add_argument("--replay-speed", type=float, default=1.0, metavar="X", help="replay speed, 1 to 60 (default 1)")
    p.add_argument("--replay-from", metavar="TIME", default=None,
                   help="start the replay at TIME: HH:MM or 'YYYY-MM-DD HH:MM' (the first market's time)")
    p.add_argument("--commission-plan", choices=("fixed", "tiered"), default="",
                   help="IBKR Pro pricing plan to charge (default: fixed, as in resources/sim/commissions.json)")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p


def config_from_args(args: argparse.Namespace) -> SimConfig:
    """Parsed arguments -> SimConfig; ValueError with a message that says what to fix."""
    accounts = tuple(args.accounts)
    if not accounts:
        raise ValueError("--accounts needs at least one account id, e.g. --accounts DU111111")
    cash = None
    if args.cash:
        cash = {}
        for item in args.cash:
            ccy, sep, amount = item.partition("=")
            try:
                if not sep:
                    raise InvalidOperation
                cash[ccy.strip().upper()] = Decimal(amount)
            except InvalidOperation:
                raise ValueError(f"--cash {item!r} is not CCY=AMOUNT, e.g. --cash USD=100000") from None
    if args.quote_interval <= 0:
        raise ValueError("--quote-interval must be more than 0 seconds")
    replay = None
    if args.replay:  # loaded and checked whole before the exchange starts (sim/replay.py)
        from ibpanel.sim.replay import open_replay

        replay = open_replay(args.replay, speed=args.replay_speed, start=args.replay_from)
    return SimConfig(
        host=args.host, port=args.port, accounts=accounts, seed=args.seed, session_mode=args.session,
        quote_interval=args.quote_interval, synthetic_symbols=max(args.synthetic, 0), state_file=args.state,
        log_requests=args.log_requests, starting_cash=cash, market_data_live=not args.no_market_data,
        readonly=args.readonly, pacing=args.pacing, delay_replies=max(args.delay_replies, 0.0),
        refuse_for=max(args.refuse_for, 0.0), max_market_data_lines=max(args.max_lines, 0),
        commission_plan=args.commission_plan, replay=replay,
    )


async def _serve(config: SimConfig) -> None:
    server = SimServer(config)
    await server.start()
    print(f"ibpanel-sim: practice exchange on {config.host}:{server.port} accounts {','.join(config.accounts)} "
          f"(Ctrl+C to stop)", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # Windows: Ctrl+C arrives as KeyboardInterrupt
            pass
    try:
        await stop.wait()
    finally:
        await server.stop()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = config_from_args(args)
    except ValueError as exc:
        print(f"ibpanel-sim: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(_serve(config))
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        print(f"ibpanel-sim: cannot listen on {config.host}:{config.port} ({exc}); is TWS or another "
              f"simulator already using that port? Try --port 7498.", file=sys.stderr)
        return 1
    except ValueError as exc:  # e.g. an unreadable --state file
        print(f"ibpanel-sim: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
