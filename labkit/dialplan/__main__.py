"""Command line: check, show and dry-run an extensions.conf.

    python -m labkit.dialplan check FILE                 errors and warnings with file:line; exit 1 on errors
    python -m labkit.dialplan show FILE [CONTEXT]        the plan, like Asterisk's `dialplan show`
    python -m labkit.dialplan route FILE CONTEXT EXTEN [--callerid NUM] [--dial STATUS|TARGET=STATUS ...]
                                 [--digits 12#] [--hangup-at SECONDS] [--at 'YYYY-MM-DD HH:MM']
                                 dry run on a simulated channel: what matches, each step, how it ends

Introduced in notebook 07.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import sys
from datetime import datetime, timedelta

from .channel import DIAL_STATUSES, HANGUP_CAUSES, SimulatedChannel
from .engine import run
from .errors import DialplanError
from .parser import check
from .show import format_dialplan


def _load_or_report(path: str):
    report = check(path)
    if report.errors:
        for err in report.errors:
            print(err, file=sys.stderr)
        return None
    return report.plan


def cmd_check(args: argparse.Namespace) -> int:
    report = check(args.file)
    for err in report.errors:
        print(f"{err}")
    for warning in report.warnings:
        print(f"{warning} (warning)")
    if report.plan is not None:
        plan = report.plan
        n_ext = sum(len(c.extensions) for c in plan.contexts.values())
        print(f"{args.file}: {len(report.errors)} error(s), {len(report.warnings)} warning(s); "
              f"{len(plan.contexts)} contexts, {n_ext} extensions, {plan.priority_count} priorities")
    return 1 if report.errors else 0


def cmd_show(args: argparse.Namespace) -> int:
    plan = _load_or_report(args.file)
    if plan is None:
        return 1
    try:
        print(format_dialplan(plan, args.context))
    except KeyError as exc:
        print(exc.args[0], file=sys.stderr)
        return 1
    return 0


def _dial_outcomes(specs: list[str]) -> object:
    outcomes: dict[str, str] = {}
    for spec in specs:
        target, eq, status = spec.rpartition("=")
        status = status.upper()
        if status not in DIAL_STATUSES:
            raise SystemExit(f"--dial {spec}: status must be one of {', '.join(DIAL_STATUSES)}")
        outcomes[target if eq else "*"] = status
    return outcomes or "ANSWER"


def cmd_route(args: argparse.Namespace) -> int:
    plan = _load_or_report(args.file)
    if plan is None:
        return 1
    if args.context not in plan:
        print(f"there is no context [{args.context}]; contexts: {', '.join(plan.contexts)}", file=sys.stderr)
        return 1
    print(f"Routing '{args.exten}' from caller '{args.callerid}' in context [{args.context}]")
    when = args.at or datetime.now().astimezone()
    print(f"  contexts searched at {when:%a %Y-%m-%d %H:%M}: {' -> '.join(plan.search_order(args.context, when))}")
    candidates = list(plan.candidates(args.context, args.exten, args.callerid, now=when))
    starts = plan.find(args.context, args.exten, 1, args.callerid, now=when)
    if not candidates:
        print(f"  no extension matches '{args.exten}'")
    for i, (ctx, ext) in enumerate(candidates, 1):
        first = ext.ordered_priorities()[0] if ext.priorities else None
        where = f"  ({first.location})" if first else ("  (hint only)" if ext.hint else "")
        mark = "   <- starts here" if starts is not None and starts.extension is ext else ""
        print(f"  {i}. '{ext.display_name}' in [{ctx}]{where}{mark}")
    chan = SimulatedChannel(caller_id_num=args.callerid, dial_outcomes=_dial_outcomes(args.dial),
                            digits=args.digits, hangup_at=args.hangup_at,
                            on_action=lambda a: print(f"       {a}"))
    start = args.at or datetime.now().astimezone()
    try:
        result = asyncio.run(run(plan, chan, args.context, args.exten, max_steps=args.max_steps,
                                 on_step=lambda s: print(f"    {s}  [{s.location}]"),
                                 on_log=lambda m: print(f"    == {m}"),
                                 clock=lambda: start + timedelta(seconds=chan.clock)))
    except DialplanError as exc:
        print(f"    !! {exc}")
        return 1
    cause = result.hangup_cause
    print(f"Call ended by {result.ended_by} after {len(result.steps)} steps, {chan.clock:.1f} s simulated; "
          f"hangup cause {cause} ({HANGUP_CAUSES.get(cause or 0, 'OTHER')})")
    if result.error:
        print(f"  error: {result.error}")
    shown = {k: v for k, v in chan.variables.items()}
    if shown:
        print("  variables: " + ", ".join(f"{k}={v}" for k, v in sorted(shown.items())))
    return 1 if (result.error or not candidates) else 0


def _when(text: str) -> datetime:
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a date and time like '2026-11-26 20:00'") from None
    return when if when.tzinfo else when.astimezone()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m labkit.dialplan",
                                     description="Check, show and dry-run Asterisk-style extensions.conf dialplans.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("check", help="report every error and warning with file:line (exit 1 on errors)")
    p.add_argument("file")
    p.set_defaults(func=cmd_check)
    p = sub.add_parser("show", help="print the dialplan like Asterisk's 'dialplan show'")
    p.add_argument("file")
    p.add_argument("context", nargs="?")
    p.set_defaults(func=cmd_show)
    p = sub.add_parser("route", help="dry run: which extension matches and what runs, on a simulated channel")
    p.add_argument("file")
    p.add_argument("context")
    p.add_argument("exten")
    p.add_argument("--callerid", default="100", help="caller's number (default 100)")
    p.add_argument("--dial", action="append", default=[], metavar="[TARGET=]STATUS",
                   help="scripted Dial() outcome, e.g. BUSY or PJSIP/101=NOANSWER (repeatable; default ANSWER)")
    p.add_argument("--digits", default="", help="DTMF the caller will key in (for Read)")
    p.add_argument("--hangup-at", type=float, default=None, metavar="SECONDS",
                   help="simulated time at which the caller hangs up")
    p.add_argument("--at", type=_when, default=None, metavar="'YYYY-MM-DD HH:MM'",
                   help="wall-clock time of the call, for time conditions (default: now)")
    p.add_argument("--max-steps", type=int, default=1000)
    p.set_defaults(func=cmd_route)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:  # `... | head`: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
