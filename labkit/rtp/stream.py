"""One RTP media stream: send audio on a drift-free 20 ms clock, receive through the jitter buffer.

The protocol pieces are sans-I/O and usable on their own:

* :class:`SendClock` - packet *n* is due at ``start + n * ptime``: an absolute schedule, so a late
  wake-up never pushes later packets back (``sleep(0.02)`` in a loop drifts by the sum of every
  oversleep; notebook 05 plots the difference).
* :class:`RtpSender` - sequence numbers, timestamps, marker bit at talkspurt starts, counters for SR.
* :class:`RtcpTimer` - RFC 3550 §6.3 randomised report interval (0.5-1.5 x the nominal 5 s).
* :class:`MediaSession` - a whole call leg's media: datagrams and times in, datagrams and played
  frames out (statistics, jitter buffer, decoding, concealment, RFC 4733 events, RTCP, latching).

:class:`MediaStream` is the thin asyncio shell around a session: an RTP socket and an RTCP socket on
port + 1 and the clock task. The PBX reuses it for every call leg. Introduced in notebook 05 (the
clock) and notebook 04 (receiving).
"""
from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .jitter import AUDIO, IDLE, JitterBuffer
from .packet import (
    SDES_CNAME, Bye, ReceiverReport, ReportBlock, RtpError, RtpPacket, SenderReport, SourceDescription,
    TelephoneEvent, build_compound, is_rtcp, ntp_from_unix, parse_rtcp,
)
from .stats import ReceiverStats, round_trip_time

Address = tuple[str, int]


# ---------------------------------------------------------------------------- sans-I/O parts


class SendClock:
    """Absolute packet schedule: packet ``n`` (0, 1, 2, …) is due at ``start + n * interval``."""

    def __init__(self, start: float, interval: float) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        self.start = start
        self.interval = interval

    def due(self, n: int) -> float:
        return self.start + n * self.interval

    def packets_due(self, now: float) -> int:
        """How many packets should have been sent by ``now`` (packets 0 .. result-1)."""
        if now < self.start:
            return 0
        return int((now - self.start) / self.interval + 1e-9) + 1


class RtpSender:
    """Numbers outgoing packets (RFC 3550 §5.1): random initial sequence number, timestamp and SSRC,
    timestamps advancing by the samples each packet carries, marker bit on a talkspurt's first."""

    def __init__(self, payload_type: int, ssrc: int | None = None, rng: random.Random | None = None):
        rng = rng or random.SystemRandom()
        self.payload_type = payload_type
        self.ssrc = rng.getrandbits(32) if ssrc is None else ssrc
        self.sequence = rng.getrandbits(16)
        self.timestamp = rng.getrandbits(32)
        self.packets_sent = 0
        self.octets_sent = 0
        self._talking = False
        self.last_send: tuple[float, int] | None = None  # (time, timestamp) of the last packet

    def packet(self, payload: bytes, samples: int, now: float, payload_type: int | None = None,
               marker: bool | None = None, advance: bool = True) -> RtpPacket:
        """The next packet; ``advance=False`` keeps the timestamp (RFC 4733 event updates)."""
        if marker is None:
            marker = not self._talking
        self._talking = True
        p = RtpPacket(self.payload_type if payload_type is None else payload_type,
                      self.sequence, self.timestamp, self.ssrc, payload, marker)
        self.sequence = (self.sequence + 1) & 0xFFFF
        self.last_send = (now, self.timestamp)
        if advance:
            self.timestamp = (self.timestamp + samples) & 0xFFFFFFFF
        self.packets_sent += 1
        self.octets_sent += len(payload)
        return p

    def silence(self, samples: int) -> None:
        """Time passes with nothing sent (DTX): the next packet starts a talkspurt."""
        self.timestamp = (self.timestamp + samples) & 0xFFFFFFFF
        self._talking = False

    def sender_report(self, wallclock: float, now: float, clock_rate: int) -> SenderReport:
        """SR for this source; the RTP timestamp is extrapolated to ``now`` (RFC 3550 §6.4.1)."""
        if self.last_send is None:
            rtp_ts = self.timestamp
        else:
            t, ts = self.last_send
            rtp_ts = (ts + int(round((now - t) * clock_rate))) & 0xFFFFFFFF
        return SenderReport(self.ssrc, ntp_from_unix(wallclock), rtp_ts, self.packets_sent, self.octets_sent)


class RtcpTimer:
    """When to send the next RTCP report: nominal interval x uniform(0.5, 1.5) (RFC 3550 §6.3.5)."""

    def __init__(self, interval: float = 5.0, rng: random.Random | None = None) -> None:
        self.interval = interval
        self.rng = rng or random.Random()
        self.next_time: float | None = None

    def start(self, now: float) -> float:
        # the first report goes out after half an interval (RFC 3550 §6.3.6 'initial')
        self.next_time = now + self.interval * 0.5 * self.rng.uniform(0.5, 1.5)
        return self.next_time

    def expired(self, now: float) -> bool:
        if self.next_time is None or now < self.next_time:
            return False
        self.next_time = now + self.interval * self.rng.uniform(0.5, 1.5)
        return True

    def due(self, now: float) -> bool:
        """True when a report is due; the first call starts the timer (and says False)."""
        if self.next_time is None:
            self.start(now)
            return False
        return self.expired(now)


def rtcp_compound(sender: RtpSender, stats: ReceiverStats | None, clock_rate: int, cname: str,
                  now: float, wallclock: float, bye: bool = False) -> bytes:
    """Our compound RTCP (RFC 3550 §6.1, §6.4): an SR when ``sender`` has sent (else an RR from
    its SSRC), a report block about the source ``stats`` follows once it has sent us anything,
    SDES CNAME, and BYE when leaving. Shared by MediaSession and the PBX's relay legs."""
    blocks = [stats.report_block(now)] if stats is not None and stats.received else []
    if sender.packets_sent:
        first = sender.sender_report(wallclock, now, clock_rate)
        first.reports = blocks
    else:
        first = ReceiverReport(sender.ssrc, blocks)
    packets = [first, SourceDescription([(sender.ssrc, [(SDES_CNAME, cname)])])]
    if bye:
        packets.append(Bye([sender.ssrc]))
    return build_compound(packets)


@dataclass
class PeerReports:
    """What a peer's RTCP compound told us (see :func:`read_rtcp`)."""

    report: ReportBlock | None = None     # its last reception report about our stream
    rtt: float | None = None              # round-trip time from that report (RFC 3550 §6.4.1)
    bye: bool = False


def read_rtcp(packets: list, stats: ReceiverStats | None, own_ssrc: int | None, now: float,
              wallclock: float, into: PeerReports) -> None:
    """Take in a peer's RTCP: its SRs about the source ``stats`` follows (for LSR/DLSR in our
    next report), its report blocks about ``own_ssrc`` (round-trip time), BYE."""
    for p in packets:
        if isinstance(p, SenderReport) and stats is not None and p.ssrc == stats.ssrc:
            stats.on_sender_report(p, now)
        if isinstance(p, (SenderReport, ReceiverReport)) and own_ssrc is not None:
            for block in p.reports:
                if block.ssrc == own_ssrc:
                    into.report = block
                    into.rtt = round_trip_time(block, wallclock)
        if isinstance(p, Bye):
            into.bye = True


@dataclass
class DtmfEvent:
    """A telephone-event (RFC 4733) seen on the stream, reported once when it ends."""

    digit: str | None
    event: int
    duration: int
    timestamp: int


# ------------------------------------------------------------------------- the media session


class MediaSession:
    """Everything one call leg's media does, sans-I/O: datagrams and times in, datagrams out.

    Inputs: :meth:`receive_rtp` / :meth:`receive_rtcp` with the datagram, its source address and
    the arrival time; :meth:`tick` once per ptime (send one frame, play one frame);
    :meth:`rtcp_report` when :meth:`rtcp_due` says so. Outputs: lists of ``(bytes, address)`` to
    send, and the played frames (``on_audio`` callback and :meth:`received_audio`).

    ``play(pcm)`` queues audio to send (int16 at the codec's sample rate); received audio goes
    through RFC 3550 statistics, the jitter buffer, the decoder and packet-loss concealment.
    ``codec=None`` adopts the codec of the first packet's static payload type (a receiver that was
    not told). :class:`MediaStream` runs one on real sockets; tests can join two in memory.
    """

    def __init__(
        self,
        codec=None,
        remote: Address | None = None,
        ptime: int = 20,
        latching: bool = True,
        latch_after: int = 4,
        rtcp_interval: float = 5.0,
        payload_type: int | None = None,
        dtmf_payload_type: int = 101,
        jitter: dict | None = None,
        record: bool = True,
        send_silence: bool = False,
        on_audio: Callable[[np.ndarray], None] | None = None,
        on_dtmf: Callable[[DtmfEvent], None] | None = None,
        cname: str = "labkit@127.0.0.1",
        rng: random.Random | None = None,
    ) -> None:
        self.codec = None
        self.ptime = ptime
        self.remote = remote
        self.remote_rtcp: Address | None = (remote[0], remote[1] + 1) if remote else None
        self.latching = latching
        self.latch_after = max(1, latch_after)
        self._candidate: tuple | None = None  # (address, ssrc, next sequence, count) while learning
        self.rtcp_interval = rtcp_interval
        self._payload_type_override = payload_type
        self.dtmf_payload_type = dtmf_payload_type
        self.jitter_options = jitter or {}
        self.record = record
        self.send_silence = send_silence
        self.on_audio = on_audio
        self.on_dtmf = on_dtmf
        self.cname = cname
        self._rng = rng
        # counters
        self.malformed = 0  # RTP datagrams that did not parse
        self.malformed_rtcp = 0
        self.foreign = 0  # datagrams from someone other than the latched peer
        self.unexpected_payload = 0
        self.packets_received = 0
        self.rx_duration_changes = 0  # times the peer's packet duration differed from ours
        self._last_arrival = 0.0
        self.late_sends = 0  # ticks that woke more than one ptime late
        self.max_send_lateness = 0.0
        self.rtcp_sent = 0
        self.rtcp_received = 0
        self.heard = PeerReports()  # the peer's last report about our stream, round-trip time, BYE
        self.dtmf_events: list[DtmfEvent] = []
        self._dtmf_current: tuple[int, int] | None = None  # (timestamp, event) being reported
        self.latched = False
        self._queue: deque[np.ndarray] = deque()
        self._dtmf_queue: deque[tuple[TelephoneEvent, int]] = deque()
        self._dtmf_active: list | None = None
        self._queued = 0
        self._pending = np.zeros(0, np.int16)
        self._frames: list[np.ndarray] = []
        self._outbox: list[tuple[bytes, Address]] = []
        self._rtcp_timer = RtcpTimer(rtcp_interval, rng)
        self.stats: ReceiverStats | None = None
        self.sender: RtpSender | None = None
        self.jitter_buffer: JitterBuffer | None = None
        if codec is not None:
            self._set_codec(codec)

    # --- codec -------------------------------------------------------------------------
    def _set_codec(self, codec) -> None:
        if isinstance(codec, str):
            from labkit.codecs import get_codec

            codec = get_codec(codec)
        self.codec = codec
        self.payload_type = (
            self._payload_type_override if self._payload_type_override is not None else codec.payload_type
        )
        if self.payload_type is None:
            raise ValueError(f"codec {codec.name} has no static payload type; pass payload_type=")
        self.frame_samples = codec.samples_per_frame(self.ptime)
        self.ts_increment = codec.timestamp_increment(self.ptime)
        self.encoder = codec.encoder()
        self.decoder = codec.decoder()
        self._setup_receive(self.ts_increment)
        self.sender = RtpSender(self.payload_type, rng=self._rng)

    def _setup_receive(self, packet_ts: int) -> None:
        """Jitter buffer and concealer for the peer's packet duration (``packet_ts`` timestamp
        units), which need not be ours: a=ptime is only a wish, so a phone may send 30 ms while
        we send 20 ms. Played audio goes through a small sample FIFO either way."""
        from labkit.dsp.plc import Concealer

        codec = self.codec
        self.rx_packet_ts = packet_ts
        self.rx_frame_samples = packet_ts * codec.sample_rate // codec.clock_rate
        self.concealer = Concealer(codec.sample_rate, self.rx_frame_samples)
        self.jitter_buffer = JitterBuffer(codec.clock_rate, packet_ts / codec.clock_rate, **self.jitter_options)
        self._rx_fifo = np.zeros(0, np.int16)
        self._last_rx: tuple[int, int] | None = None  # (sequence, timestamp) of the last packet

    def _check_packet_duration(self, packet: RtpPacket) -> None:
        """Learn the peer's packet duration from consecutive packets; rebuild the receive path if
        it differs from what we assumed (before playout starts that costs nothing)."""
        last, self._last_rx = self._last_rx, (packet.sequence_number, packet.timestamp)
        if last is None or (last[0] + 1) & 0xFFFF != packet.sequence_number or packet.marker:
            return
        step = (packet.timestamp - last[1]) & 0xFFFFFFFF
        clock = self.codec.clock_rate
        if step != self.rx_packet_ts and clock // 200 <= step <= clock // 8:  # 5..125 ms
            if step * self.codec.sample_rate % clock == 0:
                queued = list(self.jitter_buffer._packets.values())
                self._setup_receive(step)
                self.rx_duration_changes += 1
                self._last_rx = (packet.sequence_number, packet.timestamp)
                for _, p in sorted(queued, key=lambda e: e[0]):
                    self.jitter_buffer.put(p, self._last_arrival)

    # --- what the application does -----------------------------------------------------
    def play(self, pcm: np.ndarray) -> None:
        """Queue int16 audio (the codec's sample rate) to send, one frame per tick."""
        pcm = np.asarray(pcm)
        if pcm.dtype != np.int16 or pcm.ndim != 1:
            raise TypeError("play() takes a 1-D int16 array at the codec's sample rate")
        if self.codec is None:
            raise RuntimeError("no codec yet: pass codec= to send")
        self._queue.append(pcm)
        self._queued += len(pcm)

    @property
    def queued_seconds(self) -> float:
        return (self._queued + len(self._pending)) / self.codec.sample_rate if self.codec else 0.0

    @property
    def idle(self) -> bool:
        """Nothing left to send (audio or DTMF)."""
        return not self._queue and not len(self._pending) and not self._dtmf_queue and self._dtmf_active is None

    def send_dtmf(self, digit: str, duration_ms: int = 100, volume: int = 10) -> None:
        """Queue an RFC 4733 telephone-event. It goes out on the send clock instead of audio (the
        audio queue waits): a first packet with the marker bit, an update every ptime with the
        growing duration, then the end packet three times, all with the event's start timestamp."""
        event = TelephoneEvent.for_digit(digit, volume=volume)  # ValueError for a non-digit
        if duration_ms <= 0:
            raise ValueError(f"DTMF duration must be positive, got {duration_ms} ms")
        self._dtmf_queue.append((event, duration_ms))

    def received_audio(self) -> np.ndarray:
        """Everything played out so far (int16 at the codec's sample rate)."""
        return np.concatenate(self._frames) if self._frames else np.zeros(0, np.int16)

    # --- the 20 ms tick ----------------------------------------------------------------
    def tick(self, now: float) -> list[tuple[bytes, Address]]:
        """Send one frame's worth and play one frame; returns the datagrams to send."""
        self._send_tick(now)
        self._receive_tick(now)
        return self.take_outbox()

    def take_outbox(self) -> list[tuple[bytes, Address]]:
        out, self._outbox = self._outbox, []
        return out

    def _send_packet(self, packet: RtpPacket) -> None:
        if self.remote is not None:
            self._outbox.append((bytes(packet), self.remote))

    def _dtmf_tick(self, now: float) -> None:
        if self._dtmf_active is None:
            event, duration_ms = self._dtmf_queue.popleft()
            total = max(1, int(round(self.codec.clock_rate * duration_ms / 1000)))
            self._dtmf_active = [event, total, 0]  # event, total duration, elapsed
            first = True
        else:
            first = False
        event, total, elapsed = self._dtmf_active
        elapsed = min(total, elapsed + self.ts_increment)
        self._dtmf_active[2] = elapsed
        event.duration = elapsed
        event.end = elapsed >= total
        for _ in range(3 if event.end else 1):  # the end packet is sent three times (RFC 4733 2.5.1.4)
            self._send_packet(self.sender.packet(bytes(event), 0, now, self.dtmf_payload_type,
                                                 marker=first, advance=False))
            first = False
        if event.end:
            # the event occupied [start, start + duration): audio resumes after it
            steps = -(-total // self.ts_increment)
            self.sender.silence(steps * self.ts_increment)  # next audio starts a talkspurt
            self._dtmf_active = None

    def _next_frame(self) -> np.ndarray | None:
        need = self.frame_samples
        parts = [self._pending] if len(self._pending) else []
        have = len(self._pending)
        while have < need and self._queue:
            chunk = self._queue.popleft()
            self._queued -= len(chunk)
            parts.append(chunk)
            have += len(chunk)
        if have == 0:
            return None
        data = np.concatenate(parts) if len(parts) > 1 else parts[0]
        if len(data) < need:  # the tail of the queue: pad the last frame with silence
            data = np.concatenate([data, np.zeros(need - len(data), np.int16)])
        self._pending = data[need:]
        return data[:need]

    def _send_tick(self, now: float) -> None:
        if self.sender is None:
            return
        if self.remote is not None and (self._dtmf_active is not None or self._dtmf_queue):
            self._dtmf_tick(now)
            return
        frame = self._next_frame()
        if frame is None:
            if not (self.send_silence and self.remote is not None):
                if self.sender.packets_sent:
                    self.sender.silence(self.ts_increment)
                return
            frame = np.zeros(self.frame_samples, np.int16)
        if self.remote is None:
            self.sender.silence(self.ts_increment)
            return
        self._send_packet(self.sender.packet(self.encoder.encode(frame), self.ts_increment, now))

    def _receive_tick(self, now: float) -> None:
        if self.jitter_buffer is None:
            return
        need = self.frame_samples
        while len(self._rx_fifo) < need:
            # the frame pulled now starts playing once the FIFO ahead of it has played
            at = now + len(self._rx_fifo) / self.codec.sample_rate
            out = self.jitter_buffer.get(at)
            if out.kind == IDLE:
                if not len(self._rx_fifo):
                    return  # nothing to play yet
                self._rx_fifo = np.concatenate([self._rx_fifo, np.zeros(need - len(self._rx_fifo), np.int16)])
                break
            pcm = None
            if out.kind == AUDIO:
                try:
                    pcm = self.decoder.decode(out.packet.payload)
                except Exception:  # a payload this decoder cannot use: conceal instead of crashing
                    self.malformed += 1
            if pcm is not None and len(pcm) == self.rx_frame_samples:
                piece = self.concealer.good(pcm)
            else:
                piece = self.concealer.conceal()
            self._rx_fifo = np.concatenate([self._rx_fifo, piece])
        frame, self._rx_fifo = self._rx_fifo[:need], self._rx_fifo[need:]
        if self.record:
            self._frames.append(frame)
        if self.on_audio:
            self.on_audio(frame)

    # --- receiving ---------------------------------------------------------------------
    def receive_rtp(self, data: bytes, addr: Address, now: float, wallclock: float | None = None) -> None:
        """One datagram from the RTP socket (RTCP multiplexed on it, RFC 5761, is accepted too)."""
        if is_rtcp(data):
            self.receive_rtcp(data, addr, now, time.time() if wallclock is None else wallclock)
            return
        try:
            packet = RtpPacket.parse(data)
        except RtpError:
            self.malformed += 1
            return
        if self.latched and addr != self.remote:
            self.foreign += 1
            return
        if self.latching and not self.latched:
            self._learn_source(packet, addr)
        if packet.payload_type == self.dtmf_payload_type:
            if self.stats is not None and self.stats.ssrc == packet.ssrc:
                self.stats.update(packet, now, timing=False)  # same sequence space as the audio
            self._on_dtmf(packet)
            return
        if self.codec is None:
            from labkit.codecs import codec_for_payload_type

            try:
                self._set_codec(codec_for_payload_type(packet.payload_type))
            except (ValueError, KeyError, LookupError):
                self.unexpected_payload += 1
                return
        if packet.payload_type != self.payload_type:
            self.unexpected_payload += 1
            return
        self.packets_received += 1
        if self.stats is None or self.stats.ssrc != packet.ssrc:
            self.stats = ReceiverStats(packet.ssrc, self.codec.clock_rate)
        valid = self.stats.update(packet, now)
        if valid or self.stats.received == 0:  # valid, or still on probation: let it play
            self._last_arrival = now
            self._check_packet_duration(packet)
            self.jitter_buffer.put(packet, now)

    def _learn_source(self, packet: RtpPacket, addr: Address) -> None:
        """Symmetric RTP (RFC 4961) with Asterisk's strictrtp-style learning: latch onto a source
        once ``latch_after`` packets in sequence came from it, so one stray or spoofed packet
        cannot hijack the stream; from then on other sources are ignored."""
        candidate = self._candidate
        if (candidate is not None and candidate[0] == addr and candidate[1] == packet.ssrc
                and candidate[2] == packet.sequence_number):
            count = candidate[3] + 1
        else:
            count = 1
        self._candidate = (addr, packet.ssrc, (packet.sequence_number + 1) & 0xFFFF, count)
        if count >= self.latch_after:
            self.remote = addr  # answer where the media really comes from (NAT)
            self.remote_rtcp = (addr[0], addr[1] + 1)
            self.latched = True

    def _on_dtmf(self, packet: RtpPacket) -> None:
        try:
            ev = TelephoneEvent.parse(packet.payload)
        except RtpError:
            self.malformed += 1
            return
        key = (packet.timestamp, ev.event)
        if ev.end and key != self._dtmf_current:
            self._dtmf_current = key  # the end packet is sent three times: report it once
            event = DtmfEvent(ev.digit, ev.event, ev.duration, packet.timestamp)
            self.dtmf_events.append(event)
            if self.on_dtmf:
                self.on_dtmf(event)

    # --- RTCP --------------------------------------------------------------------------
    def rtcp_due(self, now: float) -> bool:
        """True when the randomised report interval has passed (the first call starts the timer)."""
        return self._rtcp_timer.due(now)

    def rtcp_report(self, now: float, wallclock: float, bye: bool = False) -> tuple[bytes, Address] | None:
        """A compound SR (if we have sent) or RR, SDES CNAME and optionally BYE, for the peer."""
        if self.remote_rtcp is None or self.sender is None:
            return None
        data = rtcp_compound(self.sender, self.stats, self.codec.clock_rate, self.cname, now, wallclock, bye)
        self.rtcp_sent += 1
        return data, self.remote_rtcp

    def receive_rtcp(self, data: bytes, addr: Address, now: float, wallclock: float) -> None:
        try:
            packets = parse_rtcp(data)
        except RtpError:
            self.malformed_rtcp += 1
            return
        self.rtcp_received += 1
        if self.latching and self.latched and self.remote_rtcp != addr and addr[0] == self.remote[0]:
            self.remote_rtcp = addr  # latch RTCP too
        read_rtcp(packets, self.stats, None if self.sender is None else self.sender.ssrc, now, wallclock,
                  self.heard)

    @property
    def peer_report(self) -> ReportBlock | None:
        """The last report block the peer sent about our stream."""
        return self.heard.report

    @property
    def rtt(self) -> float | None:
        return self.heard.rtt

    @property
    def peer_bye(self) -> bool:
        return self.heard.bye

    # --- summary -----------------------------------------------------------------------
    def summary(self) -> dict:
        s = self.stats
        jb = self.jitter_buffer
        expected = s.expected if s else 0
        return {
            "received": self.packets_received,
            "lost": s.lost if s else 0,
            "loss": (s.lost / expected) if s and expected else 0.0,
            "jitter_ms": 1000 * s.jitter_seconds if s else 0.0,
            "late": jb.late if jb else 0,
            "concealed": jb.concealed if jb else 0,
            "malformed": self.malformed,
            "sent": self.sender.packets_sent if self.sender else 0,
            "late_sends": self.late_sends,
        }


# ------------------------------------------------------------------------------ asyncio shell


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, handler: Callable[[bytes, Address], None]) -> None:
        self.handler = handler

    def datagram_received(self, data: bytes, addr) -> None:
        self.handler(data, (addr[0], addr[1]))

    def error_received(self, exc: Exception) -> None:  # ICMP port unreachable etc.: keep going
        pass


class MediaStream(MediaSession):
    """A :class:`MediaSession` on real sockets: RTP on ``local``, RTCP on its port + 1, driven by
    a drift-free clock on the running asyncio loop. ``start()``/``stop()`` are async and
    ``address`` is set after start, so ``labkit.lab.serve(stream)`` runs it in a thread."""

    def __init__(self, codec=None, local: Address = ("127.0.0.1", 0), remote: Address | None = None,
                 rtcp: bool = True, **options) -> None:
        super().__init__(codec, remote=remote, **options)
        self.local_request = local
        self.rtcp_enabled = rtcp
        self.address: Address | None = None
        self._transport = None
        self._rtcp_transport = None
        self._task: asyncio.Task | None = None
        self._drained: asyncio.Event | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        host, port = self.local_request
        for attempt in range(50):
            self._transport, _ = await loop.create_datagram_endpoint(
                lambda: _Protocol(self._on_rtp), local_addr=(host, port)
            )
            bound = self._transport.get_extra_info("sockname")
            if not self.rtcp_enabled:
                break
            try:
                self._rtcp_transport, _ = await loop.create_datagram_endpoint(
                    lambda: _Protocol(self._on_rtcp), local_addr=(host, bound[1] + 1)
                )
                break
            except OSError:
                self._transport.close()
                if port != 0 or attempt == 49:
                    raise
        self.address = (bound[0], bound[1])
        self._drained = asyncio.Event()
        self._drained.set()
        self._task = asyncio.create_task(self._run_clock())

    async def stop(self) -> None:
        """Send RTCP BYE, stop the clock and close the sockets (idempotent)."""
        if self._task is None:
            return
        task, self._task = self._task, None
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        if self._rtcp_transport is not None and self.sender is not None and self.sender.packets_sent:
            self._send_rtcp(bye=True)
        for t in (self._transport, self._rtcp_transport):
            if t is not None:
                t.close()

    def play(self, pcm: np.ndarray) -> None:
        super().play(pcm)
        if self._drained is not None:
            self._drained.clear()

    async def drain(self, timeout: float | None = None) -> None:
        """Wait until everything queued with :meth:`play` has been sent."""
        if self._drained is not None:
            await asyncio.wait_for(self._drained.wait(), timeout)

    def _flush(self, datagrams: list[tuple[bytes, Address]]) -> None:
        if self._transport is not None:
            for data, addr in datagrams:
                self._transport.sendto(data, addr)

    def _send_rtcp(self, bye: bool = False) -> None:
        report = self.rtcp_report(asyncio.get_running_loop().time(), time.time(), bye=bye)
        if report is not None and self._rtcp_transport is not None:
            self._rtcp_transport.sendto(*report)

    def _on_rtp(self, data: bytes, addr: Address) -> None:
        self.receive_rtp(data, addr, asyncio.get_running_loop().time())

    def _on_rtcp(self, data: bytes, addr: Address) -> None:
        self.receive_rtcp(data, addr, asyncio.get_running_loop().time(), time.time())

    async def _run_clock(self) -> None:
        loop = asyncio.get_running_loop()
        interval = self.ptime / 1000
        clock = SendClock(loop.time(), interval)
        self.rtcp_due(clock.start)
        n = 0
        while True:
            await asyncio.sleep(max(0.0, clock.due(n) - loop.time()))
            now = loop.time()
            # catch up on every tick that is due (after a stall), never drift
            due = clock.packets_due(now)
            while n < due:
                lateness = now - clock.due(n)
                self.max_send_lateness = max(self.max_send_lateness, lateness)
                if lateness > interval:
                    self.late_sends += 1
                # each tick runs at its own scheduled time: a stalled loop catches up on the
                # frames it owes instead of making the jitter buffer think it fell behind
                self._flush(self.tick(clock.due(n)))
                n += 1
            if self.idle and self._drained is not None:
                self._drained.set()
            if self.rtcp_enabled and self.rtcp_due(now):
                self._send_rtcp()
