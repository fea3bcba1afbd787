"""Receiver statistics exactly as RFC 3550 Appendix A specifies, and an E-model call-quality estimate.

:class:`ReceiverStats` is fed ``(packet, arrival_time)`` pairs (sans-I/O: the caller owns the clock)
and keeps the extended highest sequence number with A.1's source validation (probation,
MAX_DROPOUT, MAX_MISORDER), cumulative and fractional loss (A.3) and interarrival jitter (A.8);
it produces the reception-report block for the next RTCP SR/RR.

:func:`r_factor` / :func:`mos` are the ITU-T G.107 E-model reduced to the terms that matter on a
LAN/WAN call with G.711 (the simplification commonly used by VoIP monitors).

Introduced in notebook 04.
"""
from __future__ import annotations

from dataclasses import dataclass

from .packet import ReportBlock, RtpPacket, SenderReport, ntp_from_unix, ntp_middle32

RTP_SEQ_MOD = 1 << 16
MAX_DROPOUT = 3000
MAX_MISORDER = 100
MIN_SEQUENTIAL = 2


class ReceiverStats:
    """Per-source reception statistics (RFC 3550 A.1, A.3, A.8).

    ``update(packet, arrival)`` returns True when the packet counts as valid (the source is out
    of probation and the sequence number is plausible); the jitter buffer should only get those.
    """

    def __init__(self, ssrc: int, clock_rate: int) -> None:
        self.ssrc = ssrc
        self.clock_rate = clock_rate
        self.max_seq = 0
        self.cycles = 0
        self.base_seq = 0
        self.bad_seq = RTP_SEQ_MOD + 1
        self.probation = MIN_SEQUENTIAL
        self.received = 0
        self.expected_prior = 0
        self.received_prior = 0
        self.transit: float | None = None
        self.jitter = 0.0  # timestamp units, the A.8 estimator
        self.duplicates_or_reordered = 0
        self.last_sr_ntp_middle = 0
        self.last_sr_arrival: float | None = None
        self._started = False

    # --- A.1 -------------------------------------------------------------------------------
    def _init_seq(self, seq: int) -> None:
        self.base_seq = seq
        self.max_seq = seq
        self.bad_seq = RTP_SEQ_MOD + 1
        self.cycles = 0
        self.received = 0
        self.received_prior = 0
        self.expected_prior = 0

    def _update_seq(self, seq: int) -> bool:
        if not self._started:
            self._init_seq(seq)
            self.max_seq = (seq - 1) % RTP_SEQ_MOD
            self.probation = MIN_SEQUENTIAL
            self._started = True
        udelta = (seq - self.max_seq) % RTP_SEQ_MOD
        if self.probation:
            if seq == (self.max_seq + 1) % RTP_SEQ_MOD:
                self.probation -= 1
                self.max_seq = seq
                if self.probation == 0:
                    self._init_seq(seq)
                    self.received += 1
                    return True
            else:
                self.probation = MIN_SEQUENTIAL - 1
                self.max_seq = seq
            return False
        if udelta < MAX_DROPOUT:
            if udelta == 0:
                self.duplicates_or_reordered += 1  # a repeat of the highest packet
            if seq < self.max_seq:
                self.cycles += RTP_SEQ_MOD  # sequence number wrapped
            self.max_seq = seq
        elif udelta <= RTP_SEQ_MOD - MAX_MISORDER:
            if seq == self.bad_seq:
                # two sequential packets after a big jump: the source restarted, resync
                self._init_seq(seq)
            else:
                self.bad_seq = (seq + 1) % RTP_SEQ_MOD
                return False
        else:
            self.duplicates_or_reordered += 1
        self.received += 1
        return True

    # --- A.8 -------------------------------------------------------------------------------
    def _update_jitter(self, timestamp: int, arrival: float) -> None:
        arrival_units = arrival * self.clock_rate
        transit = arrival_units - timestamp
        if self.transit is not None:
            d = transit - self.transit
            # the RTP timestamp wraps at 2**32: fold the difference back into range
            d = (d + 2**31) % 2**32 - 2**31
            self.jitter += (abs(d) - self.jitter) / 16.0
        self.transit = transit

    def update(self, packet: RtpPacket, arrival: float, timing: bool = True) -> bool:
        """Account one received packet; return True if it is valid for playout.

        ``timing=False`` counts the sequence number only: RFC 4733 event packets repeat their
        start timestamp, which would read as jitter.
        """
        return self.update_fields(packet.sequence_number, packet.timestamp, arrival, timing)

    def update_fields(self, seq: int, timestamp: int, arrival: float, timing: bool = True) -> bool:
        """:meth:`update` from the two header fields it reads (a relay has them without parsing
        the whole packet)."""
        valid = self._update_seq(seq)
        if valid and timing:
            self._update_jitter(timestamp, arrival)
        return valid

    # --- A.3 -------------------------------------------------------------------------------
    @property
    def extended_max(self) -> int:
        return self.cycles + self.max_seq

    @property
    def expected(self) -> int:
        return self.extended_max - self.base_seq + 1 if self.received else 0

    @property
    def lost(self) -> int:
        """Cumulative packets lost (can go negative with duplicates), clamped to 24 bits signed."""
        return max(-0x800000, min(0x7FFFFF, self.expected - self.received))

    @property
    def jitter_seconds(self) -> float:
        return self.jitter / self.clock_rate

    def fraction_lost(self) -> int:
        """Fraction lost since the previous call, as an 8-bit fixed point number (A.3)."""
        expected = self.expected
        expected_interval = expected - self.expected_prior
        self.expected_prior = expected
        received_interval = self.received - self.received_prior
        self.received_prior = self.received
        lost_interval = expected_interval - received_interval
        if expected_interval == 0 or lost_interval <= 0:
            return 0
        return (lost_interval << 8) // expected_interval

    # --- report blocks ---------------------------------------------------------------------
    def on_sender_report(self, report: SenderReport, arrival: float) -> None:
        """Remember the peer's last SR so our next report can carry LSR/DLSR for its RTT."""
        self.last_sr_ntp_middle = ntp_middle32(report.ntp_timestamp)
        self.last_sr_arrival = arrival

    def report_block(self, now: float) -> ReportBlock:
        """The reception report for the next RTCP packet (advances the fraction-lost interval)."""
        dlsr = 0
        if self.last_sr_arrival is not None:
            dlsr = int(max(0.0, now - self.last_sr_arrival) * 65536)
        return ReportBlock(
            ssrc=self.ssrc,
            fraction_lost=self.fraction_lost(),
            cumulative_lost=self.lost,
            highest_sequence=self.extended_max & 0xFFFFFFFF,
            jitter=int(self.jitter),
            lsr=self.last_sr_ntp_middle,
            dlsr=dlsr,
        )


def round_trip_time(block: ReportBlock, wallclock_now: float) -> float | None:
    """RTT in seconds from a report block about our stream (RFC 3550 §6.4.1), None without an SR."""
    if block.lsr == 0:
        return None
    now = ntp_middle32(ntp_from_unix(wallclock_now))
    return ((now - block.lsr - block.dlsr) % 2**32) / 65536.0


# ------------------------------------------------------------------------------- E-model

# G.113 Appendix I values for G.711: equipment impairment and packet-loss robustness.
G711_IE = 0.0
G711_BPL_WITH_PLC = 25.1
G711_BPL_NO_PLC = 4.3
R0_MINUS_IS = 93.2  # G.107 default Ro - Is


@dataclass
class QualityEstimate:
    r: float
    mos: float
    delay_ms: float  # effective one-way delay used


def delay_impairment(delay_ms: float) -> float:
    """Id for a one-way mouth-to-ear delay (the usual linear fit of G.107's Idd curve)."""
    return 0.024 * delay_ms + (0.11 * (delay_ms - 177.3) if delay_ms > 177.3 else 0.0)


def r_factor(
    loss: float,
    jitter_ms: float = 0.0,
    delay_ms: float = 0.0,
    ie: float = G711_IE,
    bpl: float = G711_BPL_WITH_PLC,
    burst_ratio: float = 1.0,
) -> float:
    """E-model rating R (0..100) from packet loss (0..1), jitter and one-way delay.

    Jitter costs delay: a jitter buffer sized about 2x the jitter adds that to mouth-to-ear delay.
    """
    if not 0.0 <= loss <= 1.0:
        raise ValueError(f"loss must be a fraction in 0..1, got {loss}")
    ppl = 100.0 * loss
    ie_eff = ie + (95.0 - ie) * ppl / (ppl / burst_ratio + bpl)
    effective_delay = delay_ms + 2.0 * jitter_ms
    return R0_MINUS_IS - delay_impairment(effective_delay) - ie_eff


def mos_from_r(r: float) -> float:
    """G.107 Annex B mapping from R to MOS-CQE."""
    if r <= 0:
        return 1.0
    if r >= 100:
        return 4.5
    return 1.0 + 0.035 * r + r * (r - 60.0) * (100.0 - r) * 7e-6


def estimate_quality(loss: float, jitter_ms: float = 0.0, delay_ms: float = 0.0, **kw) -> QualityEstimate:
    r = r_factor(loss, jitter_ms, delay_ms, **kw)
    return QualityEstimate(r, mos_from_r(r), delay_ms + 2.0 * jitter_ms)
