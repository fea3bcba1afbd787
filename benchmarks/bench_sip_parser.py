"""How fast does labkit.sip read a real INVITE, compared with other Python SIP parsers?

The work per message (the same for every parser, as far as its API allows): parse the RFC 3261
§24.2 INVITE with its SDP body, read the top Via (transport, host, port, branch), From and To
with their tags, Call-ID, CSeq (number and method), the Contact URI's host, Content-Length,
parse the SDP body (media port, payload types, connection address), and serialise the message
back to bytes.  Reading the values is part of the work so lazy parsing cannot hide the cost.
Time is this process's CPU time (robust when other jobs share the machine).

Peers (pip install -e .[bench]): sipmessage (+ sippy's SdpBody for the SDP part, since
sipmessage has no SDP parser), sippy, pyVoIP (splits everything eagerly with no validation and
has no serialiser, so it does less work; its Contact stays a string, from which the host is cut
with the same kind of string splitting pyVoIP itself uses for From/To).  Every parser's answer
is checked against the expected values before timing, so none can skip part of the work.
Single-threaded, best of several rounds.  Each line also says how the parser fares on the
hand-made hard cases in tests/data/sip/ (modelled on RFC 4475): speed only counts together with
correctness.

Run: .venv/bin/python benchmarks/bench_sip_parser.py [--seconds 0.3] [--rounds 5] [--parts]
(--parts also splits labkit's time per message into the parts of the work, see LABKIT_PARTS)
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

# CPU time of this process: on a shared machine, wall time also counts the time other
# processes held the CPU, which is noise here.
_clock = time.process_time

DATA = (Path(__file__).resolve().parent.parent / "tests/data/sip/rfc3261_invite.sip").read_bytes()
EXPECTED = ("z9hG4bK74bf9", "9fxced76sl", None, "3848276298220188511@atlanta.example.com", 1,
            "INVITE", "client.atlanta.example.com", 151, 49172, "0", "192.0.2.101")


def labkit_work(data: bytes):
    from labkit.sip import parse

    def work(data=data):
        msg = parse(data)
        via = msg.via[0]
        via.transport, via.host, via.port
        cseq = msg.cseq
        media = msg.sdp.media[0]
        out = (via.branch, msg.from_.tag, msg.to.tag, msg.call_id, cseq.seq, cseq.method,
               msg.contact[0].uri.host, msg.content_length, media.port, media.formats[0],
               media.address)
        bytes(msg)
        return out
    return work


def sipmessage_work(data: bytes):
    import sipmessage
    from sippy.SdpBody import SdpBody

    def work(data=data):
        msg = sipmessage.Message.parse(data)
        via = msg.via[0]
        via.transport, via.host, via.port
        cseq = msg.cseq
        sdp = SdpBody(msg.body.decode())
        section = sdp.sections[0]
        out = (via.parameters["branch"], msg.from_address.parameters.get("tag"),
               msg.to_address.parameters.get("tag"), msg.call_id, cseq.sequence, cseq.method,
               msg.contact[0].uri.host, msg.content_length, section.m_header.port,
               str(section.m_header.formats[0]), (section.c_header or sdp.c_header).addr)
        bytes(msg)
        return out
    return work


def sippy_work(data: bytes):
    from sippy.SipRequest import SipRequest

    def work(data=data):
        msg = SipRequest(buf=data.decode())
        via = msg.getHFBody("via")
        via.transport, via.hostname, via.port
        cseq = msg.getHFBody("cseq")
        msg.init_body()
        msg.body.parse()
        sdp = msg.body.content
        section = sdp.sections[0]
        out = (via.getBranch(), msg.getHFBody("from").getTag(), msg.getHFBody("to").getTag(),
               str(msg.getHFBody("call-id")), cseq.getCSeqNum(), cseq.getCSeqMethod(),
               msg.getHFBody("contact").getUrl().host, len(str(sdp)), section.m_header.port,
               str(section.m_header.formats[0]), (section.c_header or sdp.c_header).addr)
        str(msg).encode()
        return out
    return work


def pyvoip_work(data: bytes):
    import pyVoIP.VoIP  # noqa: F401  (pyVoIP.SIP has a circular import; this order works)
    from pyVoIP.SIP import SIPMessage

    def work(data=data):
        msg = SIPMessage(data)
        via = msg.headers["Via"][0]
        to_tag = msg.headers["To"]["tag"] or None
        # pyVoIP keeps Contact as text: its host the way pyVoIP splits From/To
        contact_host = msg.headers["Contact"].split("@", 1)[-1].split(">")[0].split(";")[0]
        out = (via["branch"], msg.headers["From"]["tag"], to_tag, msg.headers["Call-ID"],
               int(msg.headers["CSeq"]["check"]), msg.headers["CSeq"]["method"],
               contact_host, msg.headers["Content-Length"],
               msg.body["m"][0]["port"], msg.body["m"][0]["methods"][0],
               msg.body["c"][0]["address"])
        return out
    return work


# The hand-made hard cases of tests/data/sip/ (modelled on RFC 4475): which must be refused.
TORTURE = Path(__file__).resolve().parent.parent / "tests/data/sip"
MUST_REFUSE = {"badcl", "ncl", "badvers", "lwsruri", "lwsstart", "trws", "escruri", "mcl01",
               "nulhdr", "nocolon", "bigcode"}
SEMANTIC = {"insuf", "mismatch01", "quotbal", "baddn", "scalar02", "badaspec", "badvia"}


def torture_score(name: str) -> str:
    """How many valid torture messages a parser accepts and how many broken ones it refuses."""
    import contextlib
    import io

    def accepts(data: bytes) -> bool:
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                if name == "labkit":
                    from labkit.sip import parse
                    parse(data)
                elif name.startswith("sipmessage"):
                    import sipmessage
                    sipmessage.Message.parse(data)
                elif name == "sippy":
                    from sippy.SipRequest import SipRequest
                    from sippy.SipResponse import SipResponse
                    (SipResponse if data.startswith(b"SIP/") else SipRequest)(buf=data.decode("latin-1"))
                else:
                    import pyVoIP.VoIP  # noqa: F401  (import order, see pyvoip_work)
                    from pyVoIP.SIP import SIPMessage
                    SIPMessage(data)
            return True
        except Exception:  # noqa: BLE001 - any failure counts as "refused" here
            return False

    files = [p for p in sorted(TORTURE.glob("*.sip")) if p.stem not in SEMANTIC]
    valid = [p for p in files if p.stem not in MUST_REFUSE]
    ok = sum(accepts(p.read_bytes()) for p in valid)
    refused = sum(not accepts(p.read_bytes()) for p in files if p.stem in MUST_REFUSE)
    return f"torture: accepts {ok}/{len(valid)} valid, refuses {refused}/{len(MUST_REFUSE)} broken"


PARSERS = {"labkit": labkit_work, "sipmessage+sippy-sdp": sipmessage_work,
           "sippy": sippy_work, "pyvoip (no serialise)": pyvoip_work}


def batch_size(work, seconds: float) -> int:
    """How many calls of ``work`` take about ``seconds``."""
    n = 1
    while True:
        started = _clock()
        for _ in range(n):
            work()
        elapsed = _clock() - started
        if elapsed > seconds / 4:
            return max(1, int(n * seconds / elapsed))
        n *= 2


def rates(works: dict, seconds: float, rounds: int) -> dict[str, float]:
    """Messages per second of each parser, best of ``rounds``; the parsers take turns within
    each round so that a change in machine load hits them all alike."""
    sizes = {name: batch_size(work, seconds) for name, work in works.items()}
    best = {name: float("inf") for name in works}
    for _ in range(rounds):
        for name, work in works.items():
            n = sizes[name]
            started = _clock()
            for _ in range(n):
                work()
            best[name] = min(best[name], (_clock() - started) / n)
    return {name: 1 / t for name, t in best.items()}


# labkit's work cut into parts: each reads its values from a freshly parsed message, so its
# cost is its time minus that of parsing alone (the same call overhead is in both).
LABKIT_PARTS = {
    "parse": lambda msg: None,
    "Via": lambda msg: ((via := msg.via[0]).transport, via.host, via.port, via.branch),
    "From+To tags": lambda msg: (msg.from_.tag, msg.to.tag),
    "Call-ID+CSeq": lambda msg: (msg.call_id, msg.cseq.seq, msg.cseq.method),
    "Contact host": lambda msg: msg.contact[0].uri.host,
    "SDP": lambda msg: ((media := msg.sdp.media[0]).port, media.formats[0], media.address),
    "serialise+CL": lambda msg: (bytes(msg), msg.content_length),
}


def labkit_parts(seconds: float, rounds: int) -> dict[str, float]:
    """Microseconds of labkit's CPU time per message for each part of the work."""
    from labkit.sip import parse
    works = {name: (lambda read=read, data=DATA: read(parse(data)))
             for name, read in LABKIT_PARTS.items()}
    per_message = {name: 1e6 / rate for name, rate in rates(works, seconds, rounds).items()}
    base = per_message["parse"]
    return {name: value if name == "parse" else value - base for name, value in per_message.items()}


def main() -> dict[str, float]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=0.3, help="length of one round")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--parts", action="store_true", help="also time labkit's work part by part")
    args = ap.parse_args()
    works = {}
    for name, make in PARSERS.items():
        try:
            work = make(DATA)
            got = work()
        except ImportError as err:
            print(f"{name:24s} not installed ({err.name}); pip install -e .[bench]")
            continue
        if got != EXPECTED:   # every parser must really read the same values
            raise SystemExit(f"{name} read {got}, expected {EXPECTED}")
        works[name] = work
    results = rates(works, args.seconds, args.rounds)
    for name, value in results.items():
        print(f"{name:24s} {value:10,.0f} messages/s  {1e6 / value:5.1f} us/message   "
              f"({torture_score(name)})")
    peers = {k: v for k, v in results.items() if k != "labkit"}
    if "labkit" in results and peers:
        for name, value in peers.items():
            print(f"labkit / {name}: {results['labkit'] / value:.2f}x")
        fastest = max(peers, key=peers.get)
        print(f"labkit / fastest peer ({fastest}): {results['labkit'] / peers[fastest]:.2f}x "
              f"(target >= 2x)")
    if args.parts:
        parts = labkit_parts(args.seconds, args.rounds)
        print("labkit per part (us/message): " + ", ".join(f"{name} {value:.1f}"
                                                          for name, value in parts.items())
              + f"; sum {sum(parts.values()):.1f}")
    return results


if __name__ == "__main__":
    main()
