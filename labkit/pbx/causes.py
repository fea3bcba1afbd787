"""Hangup causes (Q.850) ⇄ SIP responses (RFC 3398), and what Dial() reports.

Introduced in notebook 06. A PBX speaks two languages about why a call ended: SIP status codes
on the wire, Q.850 cause numbers inside (Asterisk's `${HANGUPCAUSE}`). These tables translate.
"""
from __future__ import annotations

UNALLOCATED = 1
NORMAL_CLEARING = 16
USER_BUSY = 17
NO_USER_RESPONSE = 18
NO_ANSWER = 19
CALL_REJECTED = 21
INVALID_NUMBER = 28
CONGESTION = 34
TEMPORARY_FAILURE = 41
ORIGINATOR_CANCEL = 487  # Asterisk's AST_CAUSE_ORIGINATOR_CANCEL is 127-ish; we keep SIP's number

#: cause → (status, reason) for a call that was never answered (RFC 3398 §8.2.6.1, as Asterisk)
CAUSE_TO_SIP = {
    UNALLOCATED: (404, "Not Found"),
    NORMAL_CLEARING: (480, "Temporarily Unavailable"),
    USER_BUSY: (486, "Busy Here"),
    NO_USER_RESPONSE: (408, "Request Timeout"),
    NO_ANSWER: (480, "Temporarily Unavailable"),
    CALL_REJECTED: (403, "Forbidden"),
    INVALID_NUMBER: (484, "Address Incomplete"),
    CONGESTION: (503, "Service Unavailable"),
    TEMPORARY_FAILURE: (503, "Service Unavailable"),
    ORIGINATOR_CANCEL: (487, "Request Terminated"),
}


def sip_for_cause(cause: int) -> tuple[int, str]:
    return CAUSE_TO_SIP.get(cause, (480, "Temporarily Unavailable"))


def cause_for_sip(status: int) -> int:
    """RFC 3398 §8.2.6.1: a failure response from a callee → the cause we hang up with."""
    if status in (486, 600):
        return USER_BUSY
    if status in (404, 410, 604):
        return UNALLOCATED
    if status == 408:
        return NO_USER_RESPONSE
    if status == 480:
        return NO_ANSWER
    if status in (403, 603):
        return CALL_REJECTED
    if status == 484:
        return INVALID_NUMBER
    if status == 487:
        return ORIGINATOR_CANCEL
    if 500 <= status < 600:
        return CONGESTION
    return TEMPORARY_FAILURE


def dial_status(statuses: list[int], timed_out: bool, cancelled: bool) -> str:
    """${DIALSTATUS} after every forked leg failed (Asterisk's rules, simplified)."""
    if cancelled:
        return "CANCEL"
    if timed_out:
        return "NOANSWER"
    if any(s in (486, 600) for s in statuses):
        return "BUSY"
    if any(s in (408, 480) for s in statuses):
        return "NOANSWER"
    if any(s >= 500 for s in statuses):
        return "CONGESTION"
    return "CHANUNAVAIL"
