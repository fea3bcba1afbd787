#!/usr/bin/env bash
# Remake data/pcaps/sipp_uac_uas.pcap: SIPp's built-in "uac" scenario calls SIPp's built-in
# "uas" scenario three times over loopback (UDP 5071 -> 5070) while tshark records the SIP.
# Needs: sipp (Debian sip-tester) and tshark, and the right to capture on lo (root or the
# wireshark group).  Run from anywhere:  bash data/pcaps/make_sipp_capture.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$here/sipp_uac_uas.pcap"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

tshark -q -i lo -f 'udp port 5070 or udp port 5071' -F pcap -w "$work/capture.pcap" \
  2>"$work/tshark.log" &
tshark_pid=$!
for _ in $(seq 50); do grep -q "Capturing on" "$work/tshark.log" 2>/dev/null && break; sleep 0.1; done

cd "$work"   # SIPp writes its logs into the working directory
sipp -sn uas -i 127.0.0.1 -p 5070 -m 3 -nostdin >/dev/null 2>&1 &
uas_pid=$!
sleep 0.5
# 3 calls, one per second, each held 500 ms before BYE.
timeout 30 sipp -sn uac 127.0.0.1:5070 -i 127.0.0.1 -p 5071 -m 3 -r 1 -d 500 -nostdin \
  >/dev/null 2>&1 || echo "sipp uac exited with $?" >&2
sleep 1
kill "$uas_pid" 2>/dev/null || true   # it normally ends by itself after its 3 calls
wait "$uas_pid" 2>/dev/null || true
kill "$tshark_pid"
wait "$tshark_pid" 2>/dev/null || true
mv "$work/capture.pcap" "$out"
echo "wrote $out ($(stat -c %s "$out") bytes)"
