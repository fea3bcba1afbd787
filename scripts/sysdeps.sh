#!/usr/bin/env bash
# System tools the tests use: SIPp (Debian: sip-tester), tshark (pyshark), espeak-ng and sox (audio), baresip and linphonec (real softphones, tests/interop),
# libsndfile/PortAudio (soundfile/sounddevice). Installed when running as root (as CI does);
# otherwise we say what is missing and the tests that need it report a skip with the reason.
set -uo pipefail
need=()
command -v sipp >/dev/null      || need+=(sip-tester)
command -v tshark >/dev/null    || need+=(tshark)
command -v espeak-ng >/dev/null || need+=(espeak-ng)
command -v sox >/dev/null       || need+=(sox)
command -v baresip >/dev/null   || need+=(baresip-core)
command -v linphonec >/dev/null || need+=(linphone-cli)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "Installing system packages: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections 2>/dev/null || true
  apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null || { echo "apt-get failed for: ${need[*]}" >&2; exit 1; }
else
  echo "Missing system tools; install them with: sudo apt-get install ${need[*]}" >&2
  echo "(tests that need them will be skipped with that reason)" >&2
fi
exit 0
