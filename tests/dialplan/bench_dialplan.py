"""Dialplan lookup and dry-run speed on a big plan, with a reference measured in the same run.

Run: .venv/bin/python tests/dialplan/bench_dialplan.py   (about 2 s; not collected by pytest)

Plan: 5,000 literal extensions plus the usual outbound patterns in one context. Figure: time of
``Dialplan.find`` per lookup. Reference: the least a router can do in Python - one dict probe plus
one compiled regex alternation over the same patterns - so the ratio is labkit's overhead for
Asterisk semantics (ordering, caller-ID variants, per-priority search, includes).
"""
import re
import time

from labkit.dialplan import parse, simulate


def build(n=5000):
    lines = ["[big]"] + [f"exten => {2000 + i},1,Dial(PJSIP/{2000 + i},20)" for i in range(n)]
    lines += [f"exten => _{d}XXXXXX,1,Dial(PJSIP/${{EXTEN}}@trunk)" for d in "23456789"]
    lines += ["exten => _1NXXNXXXXXX,1,Dial(PJSIP/${EXTEN}@trunk)", "exten => _X.,1,Congestion()"]
    return "\n".join(lines)


def best_of(fn, repeat=5):
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main():
    text = build()
    parse_s = best_of(lambda: parse(text), repeat=3)
    plan = parse(text)
    numbers = [str(2000 + i) for i in range(0, 5000, 7)] + ["5551234", "15552345678", "999"] * 20
    labkit_s = best_of(lambda: [plan.find("big", x, 1) for x in numbers]) / len(numbers)
    table = {str(2000 + i): i for i in range(5000)}
    rx = re.compile(r"[2-9]\d{6}|1[2-9]\d\d[2-9]\d{6}|\d.+")
    ref_s = best_of(lambda: [table.get(x) or rx.fullmatch(x) for x in numbers]) / len(numbers)
    calls = 300
    call_s = best_of(lambda: [simulate(plan, "big", str(2000 + i), dial_outcomes="BUSY") for i in range(calls)],
                     repeat=2) / calls
    print(f"parse 5,010 extensions: {parse_s * 1e3:.0f} ms")
    print(f"Dialplan.find: {labkit_s * 1e6:.2f} us/lookup; reference dict+regex: {ref_s * 1e6:.2f} us/lookup; "
          f"ratio {labkit_s / ref_s:.0f}x")
    print(f"simulated call (lookup, substitution, Dial, fallthrough): {call_s * 1e3:.2f} ms/call "
          f"= {1 / call_s:.0f} call setups/s of dialplan work")


if __name__ == "__main__":
    main()
