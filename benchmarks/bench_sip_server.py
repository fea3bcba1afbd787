"""OPTIONS answered per second by the PBX against concurrent clients, beside a bare asyncio reference.

    .venv/bin/python benchmarks/bench_sip_server.py [--clients 1,4,16,32] [--seconds 1] [--transport udp]

Both servers run as subprocesses (so the load generator does not share their interpreter):
  * labkit  — `python -m labkit.pbx -q --port 0` (parse, transaction layer, router, serialise)
  * asyncio — a 15-line asyncio UDP server that answers every datagram with a canned 200 OK
              (no parsing, no transactions: the ceiling of one Python process on this loop).
Each client keeps one OPTIONS in flight (closed loop, `labkit.lab.sipclient.options_load`).
Printed per client count: answered/s and median latency for both, and labkit/asyncio.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

from labkit.lab.sipclient import options_load

REFERENCE = r"""
import asyncio, sys
REPLY = (b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1\r\nFrom: <sip:a@b>\r\nTo: <sip:a@b>\r\n"
         b"Call-ID: x\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n")
class Echo(asyncio.DatagramProtocol):
    def connection_made(self, t): self.t = t
    def datagram_received(self, data, addr): self.t.sendto(REPLY, addr)
async def main():
    t, _ = await asyncio.get_running_loop().create_datagram_endpoint(Echo, local_addr=("127.0.0.1", 0))
    print("ready on %s:%d" % t.get_extra_info("sockname")[:2], flush=True)
    await asyncio.Event().wait()
asyncio.run(main())
"""


def start(cmd: list[str]) -> tuple[subprocess.Popen, tuple[str, int]]:
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        m = re.search(r"ready on ([\d.]+):(\d+)", line)
        if m:
            return proc, (m.group(1), int(m.group(2)))
    proc.kill()
    raise RuntimeError(f"server did not start: {' '.join(cmd)}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clients", default="1,4,16,32", help="comma-separated client counts")
    p.add_argument("--seconds", type=float, default=1.0, help="length of each run")
    p.add_argument("--transport", default="udp", choices=["udp", "tcp"], help="labkit's transport (reference: udp)")
    args = p.parse_args()
    counts = [int(c) for c in args.clients.split(",")]

    with tempfile.TemporaryDirectory() as data:
        labkit, labkit_addr = start([sys.executable, "-u", "-m", "labkit.pbx", "-q", "--port", "0", "--data-dir", data])
        reference, reference_addr = start([sys.executable, "-u", "-c", REFERENCE])
        try:
            options_load(labkit_addr, 1, 0.2, transport=args.transport)   # warm-up
            options_load(reference_addr, 1, 0.2)
            print(f"OPTIONS over {args.transport}, {args.seconds:g} s per run, {os.cpu_count()} CPUs")
            print(f"{'clients':>7} {'labkit/s':>10} {'p50 ms':>7} {'asyncio/s':>10} {'p50 ms':>7} {'ratio':>6}")
            for n in counts:
                ours = options_load(labkit_addr, n, args.seconds, transport=args.transport)
                ref = options_load(reference_addr, n, args.seconds)
                print(f"{n:>7} {ours.rate:>10.0f} {ours.latency_ms():>7.2f} {ref.rate:>10.0f} "
                      f"{ref.latency_ms():>7.2f} {ours.rate / ref.rate if ref.rate else float('nan'):>6.2f}"
                      + (f"  ({ours.timeouts} timeouts)" if ours.timeouts else ""), flush=True)
        finally:
            for proc in (labkit, reference):
                proc.terminate()
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
