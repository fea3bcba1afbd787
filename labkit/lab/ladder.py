"""SIP ladder diagrams (sngrep's call flow, Wireshark's flow graph) from a live trace or a pcap.

Introduced in notebook 02, drawn live in 03, used again from 06 on. A ladder has one vertical
line per party and one horizontal arrow per message, oldest at the top. The input is either the events
recorded from a server's bus (`EventRecorder(pbx.bus, "sip.")`: 'sip.in', 'sip.out' and
'sip.drop') or plain `(time, src, dst, label)` tuples — label a string or a parsed message,
src/dst "host:port" or (host, port) — so a pcap read in notebook 01 draws the same way. Two renderings share one model, `Arrow`:

    arrows = ladder_arrows(recorder, names={pbx_port: "PBX"})
    print(ladder_text(arrows, times=False))     # plain text, stable enough for nbval
    ladder_plot(arrows)                          # matplotlib figure

Parties are named "host:port" unless `names` maps them (by "host:port", (host, port) or port
number) — which is also how notebooks hide the random ports of port-0 servers.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

__all__ = ["Arrow", "ladder_arrows", "ladder_text", "ladder_plot", "message_label"]

NameMap = Mapping[Any, str]


@dataclass(frozen=True)
class Arrow:
    """One message on the ladder: when, from whom, to whom, what; `dropped` draws an ✗ head."""

    time: float
    src: str
    dst: str
    label: str
    dropped: bool = False
    transport: str = ""
    call_id: str = ""


def message_label(message: Any) -> str:
    """What an arrow says: the method for a request ('INVITE (SDP)'), 'status reason' for a response."""
    method = getattr(message, "method", None)
    if method is not None:
        label = str(method)
    else:
        label = f"{message.status} {message.reason}".strip()
    body = getattr(message, "body", b"")
    if body:
        ctype = (message.get("Content-Type") or "").lower()
        label += " (SDP)" if "sdp" in ctype else f" ({len(body)} B body)"
    return label


def _party(address: Any, names: NameMap | None) -> str:
    """'host:port' for an address (Peer, (host, port) tuple or string), renamed through `names`."""
    if address is None:
        return "?"
    if isinstance(address, str):
        host, _, port_text = address.rpartition(":")
        port: Any = int(port_text) if port_text.isdigit() else None
        text = address
    else:
        host = getattr(address, "host", None)
        port = getattr(address, "port", None)
        if host is None:  # a (host, port[, ...]) tuple
            host, port = address[0], address[1]
        host = str(host)
        text = f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"
    if names:
        for key in (text, (host.strip("[]"), port), port):
            if key is not None and key in names:
                return names[key]
    return text


def _as_arrow(item: Any, names: NameMap | None, label: Callable[[Any], str]) -> Arrow:
    """An Arrow from a (time, src, dst, label-or-message) tuple; src/dst may be addresses."""
    if isinstance(item, Arrow):
        return item
    try:
        time, src, dst, what = item
    except (TypeError, ValueError):
        raise TypeError(f"a ladder entry must be an Arrow, an event or a (time, src, dst, label) tuple, "
                        f"not {type(item).__name__}") from None
    if hasattr(what, "method") or hasattr(what, "status"):  # a parsed message (e.g. from a pcap)
        return Arrow(float(time), _party(src, names), _party(dst, names), label(what),
                     call_id=what.get("Call-ID") or "")
    return Arrow(float(time), _party(src, names), _party(dst, names), str(what))


def ladder_arrows(source: Any, names: NameMap | None = None, *,
                  label: Callable[[Any], str] = message_label, local: Any = None,
                  call_id: str | Iterable[str] | None = None) -> list[Arrow]:
    """Arrows from bus events (or an `EventRecorder`), or from (time, src, dst, label) tuples.

    'sip.in' goes peer → local, 'sip.out' local → peer; a 'sip.drop' from the transport is an
    arrow peer → local with an ✗ and the reason. `local` names the server's address when an
    event does not carry it (drops); by default the last local address seen is used.
    Events without a peer (a drop inside the transaction layer) are skipped. `call_id` keeps
    only the messages of those calls (a B2BUA's two legs have two Call-IDs).
    """
    wanted = {call_id} if isinstance(call_id, str) else set(call_id) if call_id is not None else None
    items = getattr(source, "events", source)
    arrows: list[Arrow] = []
    last_local = local
    for item in items:
        kind = getattr(item, "kind", None)
        if kind is None:
            arrow = _as_arrow(item, names, label)
            if wanted is None or arrow.call_id in wanted:
                arrows.append(arrow)
            continue
        data = item.data
        peer = data.get("peer")
        if peer is None or not kind.startswith("sip."):
            continue
        here = data.get("local") or last_local
        last_local = here or last_local
        transport = getattr(peer, "transport", "") or ""
        message = data.get("message")
        cid = (message.get("Call-ID") or "") if message is not None else ""
        if wanted is not None and cid not in wanted:
            continue
        if kind == "sip.in":
            arrows.append(Arrow(item.time, _party(peer, names), _party(here, names), label(message),
                                transport=transport, call_id=cid))
        elif kind == "sip.out":
            arrows.append(Arrow(item.time, _party(here, names), _party(peer, names), label(message),
                                transport=transport, call_id=cid))
        elif kind == "sip.drop":
            arrows.append(Arrow(item.time, _party(peer, names), _party(here, names),
                                f"dropped: {data.get('reason', '')}", dropped=True, transport=transport))
    return arrows


def _parties(arrows: list[Arrow], order: Iterable[str] | None) -> list[str]:
    parties = list(order or [])
    for a in arrows:
        for p in (a.src, a.dst):
            if p not in parties:
                parties.append(p)
    return parties


def _prepare(source: Any, names: NameMap | None, call_id: str | Iterable[str] | None) -> list[Arrow]:
    return ladder_arrows(list(getattr(source, "events", source)), names, call_id=call_id)


def _time_text(arrow: Arrow, start: float) -> str:
    return f"{arrow.time - start:.3f}"


def ladder_text(source: Any, names: NameMap | None = None, *, times: bool = True,
                parties: Iterable[str] | None = None, show_transport: bool = False,
                max_label: int = 40, call_id: str | Iterable[str] | None = None) -> str:
    """The ladder as plain text, one line per message (times in seconds from the first one).

        time     127.0.0.1:5080            PBX
        0.000    |------ REGISTER ------->|
        0.001    |<--- 401 Unauthorized --|
    """
    arrows = _prepare(source, names, call_id)
    if not arrows:
        return "(no messages)"
    cols = _parties(arrows, parties)
    labels = [_text_label(a, show_transport, max_label) for a in arrows]
    gap = max([len(l) + 8 for l in labels] + [len(c) + 2 for c in cols] + [14])
    start = arrows[0].time
    time_width = max(len(_time_text(a, start)) for a in arrows) + 3 if times else 0
    first = max(len(cols[0]) // 2, 1)
    centres = [first + i * gap for i in range(len(cols))]
    width = centres[-1] + max(len(cols[-1]) // 2 + 2, max(len(l) for l in labels) + 4)

    header = [" "] * width
    for c, name in zip(centres, cols):
        at = max(0, c - len(name) // 2)
        header[at:at + len(name)] = name
    lines = [(("time".ljust(time_width)) if times else "") + "".join(header).rstrip()]
    for arrow, text in zip(arrows, labels):
        row = [" "] * width
        for c in centres:
            row[c] = "|"
        a, b = centres[cols.index(arrow.src)], centres[cols.index(arrow.dst)]
        if a == b:  # a message to itself: a note beside the line
            note = f"<- {text}"
            row[a + 1:a + 1 + len(note) + 1] = " " + note
        else:
            lo, hi = min(a, b), max(a, b)
            for x in range(lo + 1, hi):
                row[x] = "-"
            head = "x" if arrow.dropped else (">" if b > a else "<")
            row[hi - 1 if b > a else lo + 1] = head
            span = hi - lo - 1
            body = f" {text} "
            at = lo + 1 + max(1, (span - len(body) + (b < a)) // 2)  # leftward: past the head
            row[at:at + len(body)] = body
        prefix = _time_text(arrow, start).ljust(time_width) if times else ""
        lines.append(prefix + "".join(row).rstrip())
    return "\n".join(lines)


def _text_label(arrow: Arrow, show_transport: bool, max_label: int) -> str:
    text = arrow.label
    if show_transport and arrow.transport:
        text += f" ({arrow.transport})"
    return text if len(text) <= max_label else text[: max_label - 3] + "..."


def ladder_plot(source: Any, names: NameMap | None = None, *, ax=None, times: bool = True,
                parties: Iterable[str] | None = None, show_transport: bool = False,
                title: str | None = None, max_label: int = 48, color_by: str = "kind",
                call_id: str | Iterable[str] | None = None):
    """Draw the ladder with matplotlib; returns the Axes. Each message arrow is a
    `FancyArrowPatch` with gid 'sip-arrow' (dropped ones end in an ✗), one row per message.

    `color_by="kind"`: requests blue, responses green, drops red; `"call"`: one colour per
    Call-ID (like sngrep's dialog colours), with a legend.
    """
    if color_by not in ("kind", "call"):
        raise ValueError(f"color_by must be 'kind' or 'call', not {color_by!r}")
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch

    arrows = _prepare(source, names, call_id)
    cols = _parties(arrows, parties)
    if ax is None:
        _, ax = plt.subplots(figsize=(max(6.0, 3.2 * len(cols)), 1.0 + 0.45 * max(len(arrows), 1)))
    n = len(arrows)
    xs = {p: i for i, p in enumerate(cols)}
    for p, x in xs.items():
        ax.plot([x, x], [-0.6, n - 0.4], color="#888", lw=1.2, zorder=1)
        ax.text(x, -0.75, p, ha="center", va="bottom", fontsize=10, fontweight="bold",
                bbox=dict(boxstyle="round,pad=0.3", fc="#e8f0fe", ec="#3367d6"))
    start = arrows[0].time if arrows else 0.0
    calls = list(dict.fromkeys(a.call_id for a in arrows))
    palette = plt.rcParams["axes.prop_cycle"].by_key().get("color", ["C0"])
    for row, arrow in enumerate(arrows):
        x0, x1 = xs[arrow.src], xs[arrow.dst]
        text = _text_label(arrow, show_transport, max_label)
        if arrow.dropped:
            color = "#b00020"
        elif color_by == "call":
            color = palette[calls.index(arrow.call_id) % len(palette)]
        else:
            color = "#1a1a80" if _is_request_label(arrow.label) else "#1b5e20"
        if x0 == x1:
            patch = FancyArrowPatch((x0, row - 0.15), (x0, row + 0.15), connectionstyle="arc3,rad=-1.2",
                                    arrowstyle="-|>", mutation_scale=12, color=color, zorder=2)
            ax.text(x0 + 0.12, row, text, fontsize=8.5, va="center", color=color)
        else:
            end = x1 - 0.04 * (1 if x1 > x0 else -1) if arrow.dropped else x1
            patch = FancyArrowPatch((x0, row), (end, row), arrowstyle="-" if arrow.dropped else "-|>",
                                    mutation_scale=14, color=color, lw=1.4, shrinkA=0, shrinkB=0, zorder=2)
            if arrow.dropped:
                ax.plot([end], [row], marker="x", color=color, markersize=10, mew=2.5, zorder=3)
            ax.text((x0 + x1) / 2, row - 0.08, text, ha="center", va="bottom", fontsize=8.5, color=color)
        patch.set_gid("sip-arrow")
        ax.add_patch(patch)
        if times:
            ax.text(-0.35, row, f"{arrow.time - start:.3f} s", ha="right", va="center", fontsize=8, color="#555")
    if color_by == "call" and len(calls) > 1:
        from matplotlib.lines import Line2D

        handles = [Line2D([], [], color=palette[i % len(palette)], lw=2) for i in range(len(calls))]
        ax.legend(handles, [f"Call-ID {c[:24]}" for c in calls], loc="upper center",
                  bbox_to_anchor=(0.5, 0.0), ncol=min(3, len(calls)), fontsize=8, frameon=False)
    ax.set_xlim(-0.9 if times else -0.5, max(len(cols) - 1, 0) + 0.6)
    ax.set_ylim(n - 0.3, -1.3)
    ax.axis("off")
    if title:
        ax.set_title(title)
    return ax


def _is_request_label(label: str) -> bool:
    return not label[:3].isdigit()
