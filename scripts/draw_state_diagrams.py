"""Regenerate the transaction state diagrams from the transition tables in labkit.sip.transaction.

Usage:
    python scripts/draw_state_diagrams.py               # rewrite the Mermaid part of docs/transactions.md
    python scripts/draw_state_diagrams.py --png DIR     # also save one PNG per machine (matplotlib)
    python scripts/draw_state_diagrams.py --dot DIR     # also save Graphviz .dot files

The diagrams are drawn from the same tables the state machines run on (h11 does this for its
HTTP states), so the pictures in the docs and notebooks cannot disagree with the code.
tests/sip/test_transaction.py checks that docs/transactions.md is current.
"""
import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from labkit.sip.transaction import MACHINES, draw, to_dot, to_mermaid  # noqa: E402

DOC = ROOT / "docs" / "transactions.md"
BEGIN = "<!-- BEGIN GENERATED: scripts/draw_state_diagrams.py -->"
END = "<!-- END GENERATED -->"


def generated_section() -> str:
    parts = [BEGIN]
    for name, machine in MACHINES.items():
        parts.append(f"\n### {machine.name} ({machine.rfc_figure})\n\n```mermaid\n{to_mermaid(machine)}```\n")
    parts.append(END)
    return "\n".join(parts)


def update_doc(path: Path = DOC) -> bool:
    """Replace the generated part of the doc; returns True if it changed."""
    text = path.read_text(encoding="utf-8")
    start, end = text.index(BEGIN), text.index(END) + len(END)
    new = text[:start] + generated_section() + text[end:]
    if new != text:
        path.write_text(new, encoding="utf-8")
    return new != text


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--png", type=Path, help="directory for PNG drawings")
    parser.add_argument("--dot", type=Path, help="directory for Graphviz .dot files")
    args = parser.parse_args(argv)
    print(f"{DOC.relative_to(ROOT)}: {'updated' if update_doc() else 'already current'}")
    if args.dot:
        args.dot.mkdir(parents=True, exist_ok=True)
        for name, machine in MACHINES.items():
            (args.dot / f"{name}.dot").write_text(to_dot(machine), encoding="utf-8")
            print(f"wrote {args.dot / (name + '.dot')}")
    if args.png:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        args.png.mkdir(parents=True, exist_ok=True)
        for name, machine in MACHINES.items():
            fig, ax = plt.subplots(figsize=(10, 7))
            draw(machine, ax)
            fig.savefig(args.png / f"{name}.png", dpi=100, bbox_inches="tight")
            plt.close(fig)
            print(f"wrote {args.png / (name + '.png')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
