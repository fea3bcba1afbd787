"""``dialplan show``: the plan printed the way Asterisk's CLI prints it.

Introduced in notebook 07. Extensions appear in match order (literal first, then patterns, most
specific first), each priority with the file and line it came from, then the includes::

    [ Context 'internal' created by 'pbx_config' ]
      '600' =>          1. Answer()                                   [extensions.conf:31]
                        2. Echo()                                     [extensions.conf:32]
      Include =>        'demo'                                        [pbx_config]

    -= 3 extensions (5 priorities) in 1 context. =-
"""
from __future__ import annotations

from .model import Context, Dialplan

__all__ = ["format_dialplan", "format_context"]


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def format_context(ctx: Context) -> list[str]:
    lines = [f"[ Context '{ctx.name}' created by 'pbx_config' ]"]
    for ext in ctx.sorted_extensions():
        head = f"'{ext.name}' (CID match '{ext.callerid}') =>" if ext.callerid else f"'{ext.name}' =>"
        first = True
        if ext.hint:
            lines.append(f"  {head:<17} {'hint: ' + ext.hint:<45} [{ext.hint_location}]")
            first = False
        for step in ext.ordered_priorities():
            left = head if first else (f"[{step.label}]" if step.label else "")
            if first and step.label:
                left = f"'{ext.display_name}' ({step.label}) =>"
            text = f"{step.number}. {step.app}({step.data})"
            lines.append(f"  {left:<17} {text:<45} [{step.location}]")
            first = False
    for inc in ctx.includes:
        what = f"'{inc.name}'" + (f"|{inc.timespec}" if inc.timespec else "")
        lines.append(f"  {'Include =>':<17} {what:<45} [pbx_config]")
    if ctx.ignore_patterns:
        for pat in ctx.ignore_patterns:
            lines.append(f"  {'Ignore pattern =>':<17} '{pat}'")
    return lines


def format_dialplan(plan: Dialplan, context: str | None = None) -> str:
    """Text of ``dialplan show [context]``; a KeyError names an unknown context."""
    if context is not None and context not in plan:
        raise KeyError(f"there is no context [{context}]; contexts: {', '.join(plan.contexts)}")
    names = [context] if context is not None else list(plan.contexts)
    lines: list[str] = []
    n_ext = n_prio = 0
    for name in names:
        ctx = plan[name]
        lines.extend(format_context(ctx))
        lines.append("")
        n_ext += len(ctx.extensions)
        n_prio += sum(len(e.priorities) for e in ctx.extensions.values())
    lines.append(f"-= {_plural(n_ext, 'extension')} ({_plural(n_prio, 'priority')}) in "
                 f"{_plural(len(names), 'context')}. =-".replace("prioritys", "priorities"))
    return "\n".join(lines)
