"""`python -m labkit.pbx`: run the PBX on the main thread until Ctrl-C or SIGTERM."""
from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import signal
import sys

from .config import ConfigError, load, load_plan
from .server import PBX

#: Calls leave no cyclic garbage (tests/sipp/test_no_cyclic_garbage.py): refcounting frees
#: every object of a finished call. So the automatic collector is off in the PBX process: its
#: passes walk every live SIP transaction (RFC 3261 keeps them up to 32 s) and call, and a
#: full pass stalled the loop 0.4-0.7 s at 200 calls/s (benchmarks/bench_calls.py).
#: Instead, every SETTLE_EVERY seconds gc.freeze() moves what is alive into the collector's
#: permanent generation without walking it (O(1)): objects that outlived a window are the
#: lingering transactions and held calls, which refcounting frees later. Walking them in young
#: passes instead (gc.collect(1) every 10 s, session 2) stalled the loop 170-240 ms each time
#: at 300 calls/s -- the stall that tipped a loaded PBX into SIPp retransmissions. What rarer
#: paths (errors, exceptions kept in futures) may leave in cycles is collected by a full pass
#: every FULL_GC_EVERY windows (10 minutes): unfreeze, collect, freeze again.
SETTLE_EVERY = 10.0       # seconds between gc.freeze() calls
FULL_GC_EVERY = 60        # every 60th window (10 minutes) ends with a full gc.collect()


async def collect_garbage(settle_every: float = SETTLE_EVERY, full_every: int = FULL_GC_EVERY) -> None:
    """The cyclic GC on a timer instead of on allocation counts (see SETTLE_EVERY)."""
    windows = 0
    while True:
        await asyncio.sleep(settle_every)
        windows += 1
        if windows % full_every == 0:
            gc.unfreeze()
            gc.collect()
        gc.freeze()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m labkit.pbx",
        description="labkit's PBX. With no --config it runs the embedded default "
        "(loopback only, demo extensions 100-102).",
    )
    p.add_argument("--config", "-c", help="TOML config file (default: the embedded default)")
    p.add_argument("--bind", help="address to listen on (default from config: 127.0.0.1)")
    p.add_argument("--port", "-p", type=int, help="SIP port for UDP and TCP (default 5060; 0 picks a free one)")
    p.add_argument("--data-dir", help="where registrations, CDR and voicemail live")
    p.add_argument("--list", action="store_true",
                   help="print the current registrations (AOR -> contact, expires in N s) and exit")
    p.add_argument("--no-uvloop", action="store_true", help="run on asyncio's default loop even if uvloop is installed")
    p.add_argument("--quiet", "-q", action="store_true", help="do not log every SIP message")
    p.add_argument("--verbose", "-v", action="store_true", help="debug logging")
    return p.parse_args(argv)


async def run(pbx: PBX) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # not on the main thread / platform
            pass
    await pbx.start()
    # A long-lived server: start-up objects (modules, config, dialplan) leave the collector's
    # scans for good, and the collector runs on a timer (see SETTLE_EVERY).
    gc.collect()
    gc.freeze()
    gc.disable()
    collector = asyncio.create_task(collect_garbage())
    host, port = pbx.address
    from .loop import loop_name
    print(f"labkit PBX ready on {host}:{port} ({'+'.join(pbx.config.transports)}, {loop_name()}); Ctrl-C stops",
          flush=True)
    try:
        await stop.wait()
    finally:
        collector.cancel()
        await pbx.stop()
        print("labkit PBX stopped", flush=True)


def list_registrations(config) -> int:
    """Read the running (or stopped) PBX's location database; SQLite WAL lets us read alongside it."""
    import time

    from .location import LocationService, format_bindings
    from .server import DB_NAME

    path = config.data_dir / DB_NAME
    if not path.exists():
        print(f"no registrations (no database at {path})")
        return 0
    location = LocationService(path)
    try:
        now = time.time()
        print(format_bindings(location.all(now), now))
    finally:
        location.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO,
        format="%(asctime)s.%(msecs)03d %(message)s", datefmt="%H:%M:%S", stream=sys.stdout,
    )
    try:
        config = load(args.config)
    except ConfigError as exc:
        print(f"labkit.pbx: {exc}", file=sys.stderr)
        return 2
    if args.bind:
        config.bind = args.bind
        if "bind" not in config.raw.get("rtp", {}):
            config.rtp_bind = args.bind   # media follows signalling unless [rtp] bind says otherwise
    if args.port is not None:
        config.port = args.port
    if args.data_dir:
        from pathlib import Path
        config.data_dir = Path(args.data_dir).expanduser()
    if args.list:
        return list_registrations(config)
    try:
        load_plan(config)
    except ConfigError as exc:
        print(f"labkit.pbx: bad configuration:\n{exc}", file=sys.stderr)
        return 2
    try:
        from .loop import run as run_loop
        run_loop(run(PBX(config)), prefer_uvloop=not args.no_uvloop)
    except OSError as exc:
        print(f"labkit.pbx: cannot listen on {config.bind}:{config.port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
