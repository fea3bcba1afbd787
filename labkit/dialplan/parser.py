"""Reading Asterisk's ``extensions.conf``: contexts, extensions, priorities, includes, globals.

Introduced in notebook 07. Understood syntax::

    [globals]                          ; NAME=value, ${...} substituted as read
    TRUNK=pstn
    [internal]                         ; a context
    include => demo                    ; searched after this context's own extensions
    include => day,08:00-17:59,mon-fri,*,*   ; only inside that time (see labkit.dialplan.timespec)
    exten => 100,1,Answer()            ; extension, priority, Application(arguments)
    exten = 100,n(greet),Playback(hello-world)   ; 'n' = previous + 1, '(greet)' a label
    same => n,Hangup()                 ; 'same' = the extension of the line before
    exten => 100,hint,PJSIP/100        ; device state to watch (BLF), kept, never run
    exten => _1XX/5551212,1,NoOp()     ; '/...' = only for this caller ID (a pattern too)
    #include "more.conf"               ; relative to the including file
    ;-- a block comment --;            ; and '\\;' is a literal semicolon

Every error is collected with its ``file:line`` (:func:`check` reports them all; :func:`load`
and :func:`parse` raise :class:`DialplanErrors` listing them). Warnings (unknown included
context, a priority gap, characters after ``.`` in a pattern...) are kept in
``Dialplan.warnings``. Application names are checked against the registry, and the arguments of
applications that know how to check them (Dial, Wait, Goto targets...) are checked when they
contain no variables.
"""
from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from .applications import APPLICATIONS
from .errors import DialplanError, DialplanErrors, PatternError
from .model import Context, Dialplan, Extension, Include, Priority
from .timespec import TimeSpec
from .variables import VariableScope, static_problems, substitute

__all__ = ["parse", "load", "check", "CheckReport"]

_KEY_VALUE = re.compile(r"([A-Za-z_][\w.-]*)\s*(=>|=)\s*(.*)\Z")
_PRIORITY = re.compile(r"(\d+|n|hint)(?:\(([^()]*)\))?\Z")
_APP_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
_LABEL = re.compile(r"[A-Za-z0-9_][\w-]*\Z")
_GOTO_APPS = {"goto", "gotoif", "gosub", "gotoiftime"}


@dataclass
class CheckReport:
    """Result of :func:`check`: every error and warning, and the plan as far as it could be read."""

    errors: list[DialplanError] = field(default_factory=list)
    warnings: list[DialplanError] = field(default_factory=list)
    plan: Dialplan | None = None

    @property
    def ok(self) -> bool:
        return not self.errors

    def __str__(self) -> str:
        lines = [str(e) for e in self.errors] + [f"{w} (warning)" for w in self.warnings]
        return "\n".join(lines)


def _strip_comments(text: str) -> list[tuple[int, str]]:
    """Lines without comments, with their 1-based numbers; ``\\;`` becomes ``;``."""
    lines: list[tuple[int, str]] = []
    in_block = False
    for number, raw in enumerate(text.splitlines(), 1):
        out: list[str] = []
        i = 0
        while i < len(raw):
            if in_block:
                end = raw.find("--;", i)
                if end < 0:
                    break
                in_block, i = False, end + 3
                continue
            c = raw[i]
            if c == "\\" and raw.startswith(";", i + 1):
                out.append(";")
                i += 2
            elif raw.startswith(";--", i):
                in_block, i = True, i + 3
            elif c == ";":
                break
            else:
                out.append(c)
                i += 1
        lines.append((number, "".join(out)))
    return lines


class _Loader:
    def __init__(self, check_apps: bool):
        self.plan = Dialplan()
        self.errors: list[DialplanError] = []
        self.warnings: list[DialplanError] = []
        self.check_apps = check_apps
        self.section: Context | str | None = None
        self.last_ext: dict[str, Extension] = {}  # per context: the extension 'same' refers to
        self.stack: list[str] = []
        self.broken: set[str] = set()  # contexts whose last 'exten' line had an error

    def error(self, message: str, filename: str, line: int) -> None:
        self.errors.append(DialplanError(message, filename, line))

    def warn(self, message: str, filename: str, line: int) -> None:
        self.warnings.append(DialplanError(message, filename, line))

    # -- files ----------------------------------------------------------------------------------
    def load_text(self, text: str, filename: str, base_dir: Path, real_path: str | None) -> None:
        key = real_path or filename
        if key in self.stack:
            return
        self.stack.append(key)
        if filename not in self.plan.files:
            self.plan.files.append(filename)
        for number, content in _strip_comments(text):
            line = content.strip()
            if line:
                self.line(line, filename, number, base_dir)
        self.stack.pop()

    def include_file(self, spec: str, filename: str, number: int, base_dir: Path) -> None:
        name = spec.strip()
        if len(name) >= 2 and name[0] in "\"<" and name[-1] in "\">":
            name = name[1:-1]
        if not name:
            self.error("#include needs a file name", filename, number)
            return
        path = (base_dir / name).resolve()
        if str(path) in self.stack:
            self.error(f"#include \"{name}\" includes itself (directly or through other files)", filename, number)
            return
        try:
            text = path.read_text(encoding="utf-8-sig")
        except FileNotFoundError:
            self.error(f"#include \"{name}\": no such file ({path})", filename, number)
            return
        except (OSError, UnicodeDecodeError) as exc:
            self.error(f"#include \"{name}\": cannot read it ({exc})", filename, number)
            return
        shown = os.path.join(os.path.dirname(filename), name) if os.path.dirname(filename) else name
        self.load_text(text, shown, path.parent, str(path))

    # -- lines ----------------------------------------------------------------------------------
    def line(self, line: str, filename: str, number: int, base_dir: Path) -> None:
        if line.startswith("#"):
            directive, _, rest = line.partition(" ")
            if directive.lower() in ("#include", "#tryinclude"):
                self.include_file(rest, filename, number, base_dir)
            else:
                self.error(f"unsupported directive '{directive}' (only #include is)", filename, number)
            return
        if line.startswith("["):
            self.section_header(line, filename, number)
            return
        m = _KEY_VALUE.match(line)
        if not m:
            self.error(f"cannot read '{line}': expected '[context]' or 'key => value'", filename, number)
            return
        key, value = m.group(1), m.group(3).strip()
        section = self.section
        if section is None:
            self.error(f"'{key}' outside any [context]", filename, number)
        elif section == "general":
            self.plan.settings[key.lower()] = value
        elif section == "globals":
            try:
                self.plan.globals[key] = substitute(value, VariableScope(globals=self.plan.globals))
            except DialplanError as exc:
                self.error(f"global {key}: {exc.message}", filename, number)
        else:
            assert isinstance(section, Context)
            self.context_line(section, key.lower(), value, filename, number)

    def section_header(self, line: str, filename: str, number: int) -> None:
        m = re.match(r"\[([^\]]*)\](.*)\Z", line)
        if not m:
            self.error(f"unclosed '[' in '{line}'", filename, number)
            self.section = None
            return
        name, rest = m.group(1).strip(), m.group(2).strip()
        if rest:
            self.error(f"context templates ('{rest}' after [{name}]) are not supported", filename, number)
        if not name or re.search(r"[\s,]", name):
            self.error(f"bad context name '[{name}]'", filename, number)
            self.section = None
            return
        if name.lower() in ("general", "globals"):
            self.section = name.lower()
            return
        ctx = self.plan.contexts.get(name)
        if ctx is None:  # a repeated [name] adds to the same context, as in Asterisk
            ctx = self.plan.contexts[name] = Context(name, filename, number)
        self.section = ctx

    def context_line(self, ctx: Context, key: str, value: str, filename: str, number: int) -> None:
        if key == "exten":
            errors_before = len(self.errors)
            self.exten_line(ctx, value, filename, number)
            if len(self.errors) > errors_before:
                self.broken.add(ctx.name)
            else:
                self.broken.discard(ctx.name)
            return
        self.other_line(ctx, key, value, filename, number)

    def exten_line(self, ctx: Context, value: str, filename: str, number: int) -> None:
        parts = value.split(",", 2)
        if len(parts) < 3:
            self.error(f"exten needs 'extension,priority,application' (got '{value}')", filename, number)
            return
        self.add_priority(ctx, parts[0].strip(), parts[1].strip(), parts[2].strip(), filename, number)

    def other_line(self, ctx: Context, key: str, value: str, filename: str, number: int) -> None:
        if key == "same":
            if ctx.name in self.broken:  # its 'exten' line was reported already: no cascade of errors
                return
            ext = self.last_ext.get(ctx.name)
            if ext is None:
                self.error(f"'same' before any 'exten' in context [{ctx.name}]", filename, number)
                return
            parts = value.split(",", 1)
            if len(parts) < 2:
                self.error(f"same needs 'priority,application' (got '{value}')", filename, number)
                return
            self.add_priority(ctx, ext.display_name, parts[0].strip(), parts[1].strip(), filename, number)
        elif key == "include":
            name, _, timespec = value.partition(",")
            name = name.strip()
            if not name:
                self.error("include needs a context name", filename, number)
                return
            timing = None
            if timespec.strip():
                try:
                    timing = TimeSpec.parse(timespec.strip())
                except DialplanError as exc:
                    self.error(f"include => {name}: {exc.message}", filename, number)
                    return
            ctx.includes.append(Include(name, timespec.strip() or None, filename, number, timing))
        elif key == "ignorepat":
            ctx.ignore_patterns.append(value)
        elif key in ("switch", "eswitch", "lswitch"):
            self.error(f"'{key}' (remote dialplan switches) is not supported", filename, number)
        else:
            self.error(f"unknown keyword '{key}' in context [{ctx.name}] "
                       "(expected exten, same, include or ignorepat)", filename, number)

    def add_priority(self, ctx: Context, name: str, prio: str, appl: str, filename: str, number: int) -> None:
        exten, slash, callerid = name.partition("/")
        exten, callerid = exten.strip(), callerid.strip()
        if slash and not callerid:
            self.error(f"extension '{name}' has an empty caller ID after '/'", filename, number)
            return
        key = (exten, callerid or None)
        ext = ctx.extensions.get(key)
        if ext is None:
            try:
                ext = Extension(exten, callerid or None)
            except PatternError as exc:
                self.error(exc.message, filename, number)
                return
            ctx.extensions[key] = ext
            tail = ext.pattern.ignored_tail
            if tail:
                self.warn(f"pattern '{exten}': '{tail}' after '.' or '!' is never matched", filename, number)
        self.last_ext[ctx.name] = ext
        m = _PRIORITY.match(prio)
        if not m:
            self.error(f"bad priority '{prio}' for extension {exten} in context [{ctx.name}] "
                       "(expected a number, 'n' or 'hint', optionally with a (label))", filename, number)
            return
        kind, label = m.group(1), m.group(2)
        if kind == "hint":
            if ext.hint is not None:
                self.error(f"second hint for extension {exten} in context [{ctx.name}] "
                           f"(first at {ext.hint_location})", filename, number)
                return
            if not appl:
                self.error(f"hint for extension {exten} in context [{ctx.name}] names no device", filename, number)
                return
            ext.hint, ext.hint_location = appl, f"{filename}:{number}"
            return
        if kind == "n":
            last = getattr(ext, "_last_priority", None)
            if last is None:
                self.error(f"priority 'n' before any priority 1 for extension {exten} in context [{ctx.name}]",
                           filename, number)
                return
            value = last + 1
        else:
            value = int(kind)
            if value < 1:
                self.error(f"priority 0 for extension {exten} in context [{ctx.name}]: priorities start at 1",
                           filename, number)
                return
        app, data = self.split_application(appl, filename, number)
        if app is None:
            return
        if value in ext.priorities:
            first = ext.priorities[value]
            self.error(f"duplicate priority {value} for extension {exten} in context [{ctx.name}] "
                       f"(first at {first.location})", filename, number)
            return
        if label is not None:
            if not _LABEL.match(label):
                self.error(f"bad label '{label}' for extension {exten} in context [{ctx.name}]", filename, number)
                return
            if label in ext.labels:
                first = ext.priorities[ext.labels[label]]
                self.error(f"duplicate label '{label}' for extension {exten} in context [{ctx.name}] "
                           f"(first at {first.location})", filename, number)
                return
            ext.labels[label] = value
        ext.priorities[value] = Priority(value, app, data, label, filename, number)
        ext._last_priority = value  # type: ignore[attr-defined]

    def split_application(self, appl: str, filename: str, number: int) -> tuple[str | None, str]:
        if not appl:
            self.error("missing application after the priority", filename, number)
            return None, ""
        if "(" in appl:
            app, _, rest = appl.partition("(")
            close = rest.rfind(")")
            if close < 0:
                self.error(f"missing ')' in '{appl}'", filename, number)
                return None, ""
            if rest[close + 1 :].strip():
                self.error(f"text after ')' in '{appl}'", filename, number)
                return None, ""
            data = rest[:close]
        else:  # old style "App,args" or a bare "App"
            app, _, data = appl.partition(",")
        app = app.strip()
        if not _APP_NAME.match(app):
            self.error(f"bad application name '{app}' in '{appl}'", filename, number)
            return None, ""
        return app, data

    # -- whole-plan checks ----------------------------------------------------------------------
    def validate(self) -> None:
        plan = self.plan
        for ctx in plan.contexts.values():
            for inc in ctx.includes:
                if inc.name not in plan.contexts:
                    self.warn(f"context [{ctx.name}] includes unknown context [{inc.name}]", inc.filename, inc.line)
            for ext in ctx.sorted_extensions():
                self.validate_extension(ctx, ext)

    def validate_extension(self, ctx: Context, ext: Extension) -> None:
        numbers = sorted(ext.priorities)
        if numbers and numbers[0] != 1:
            p = ext.priorities[numbers[0]]
            self.warn(f"extension {ext.display_name} in context [{ctx.name}] has no priority 1: "
                      "calls cannot start there, only a Goto can reach it", p.filename, p.line)
        for a, b in zip(numbers, numbers[1:]):
            if b != a + 1:
                p = ext.priorities[b]
                self.warn(f"extension {ext.display_name} in context [{ctx.name}] jumps from priority {a} to {b}: "
                          f"execution stops after {a} unless a Goto reaches {b}", p.filename, p.line)
        for step in ext.ordered_priorities():
            self.validate_step(ctx, ext, step)

    def validate_step(self, ctx: Context, ext: Extension, step: Priority) -> None:
        if not self.check_apps:
            return
        app = APPLICATIONS.get(step.app.lower())
        if app is None:
            close = difflib.get_close_matches(step.app.lower(), list(APPLICATIONS), n=1)
            hint = f" (did you mean {APPLICATIONS[close[0]].name}?)" if close else ""
            self.error(f"unknown application '{step.app}'{hint}", step.filename, step.line)
            return
        if "$" in step.data:
            for problem in static_problems(step.data):
                self.error(f"{app.name}({step.data}): {problem}", step.filename, step.line)
            return
        if app.check is not None:
            for message in app.check(step.data):
                self.error(f"{app.name}({step.data}): {message}", step.filename, step.line)
        if step.app.lower() in _GOTO_APPS:
            for target in _goto_targets(step.app.lower(), step.data):
                problem = self.goto_problem(ctx, ext, target)
                if problem:
                    self.error(f"{app.name}({step.data}): {problem}", step.filename, step.line)

    def goto_problem(self, ctx: Context, ext: Extension, target: str) -> str | None:
        if target.endswith(")") and "(" in target:  # Gosub arguments
            target = target[: target.index("(")]
        parts = [p.strip() for p in target.split(",")]
        if len(parts) > 3 or any(not p for p in parts):
            return f"bad target '{target}': expected [[context,]exten,]priority"
        context = parts[0] if len(parts) == 3 else ctx.name
        prio = parts[-1]
        if context not in self.plan.contexts:
            return f"target '{target}': no context [{context}]"
        if prio[:1] in "+-":
            return None
        if len(parts) == 1:
            candidates = [ext]
        else:
            exten = parts[-2]
            candidates = [e for name in self.plan.search_order(context)
                          for e in self.plan[name].sorted_extensions()
                          if e.name == exten or e.pattern.matches(exten)]
            if not candidates:
                return f"target '{target}': no extension {exten} in [{context}] or what it includes"
        for e in candidates:
            if (prio.isdigit() and int(prio) in e.priorities) or prio in e.labels:
                return None
        what = f"priority {prio}" if prio.isdigit() else f"label '{prio}'"
        return f"target '{target}': no {what} for extension {candidates[0].name} in [{context}]"


def _goto_targets(app: str, data: str) -> list[str]:
    if app not in ("gotoif", "gotoiftime"):
        return [data]
    if "?" not in data:
        return []
    _, _, rest = data.partition("?")
    yes, _, no = rest.partition(":")
    return [t.strip() for t in (yes, no) if t.strip()]


def _finish(loader: _Loader) -> None:
    loader.validate()
    order = {name: i for i, name in enumerate(loader.plan.files)}

    def key(e: DialplanError):
        return (order.get(e.filename or "", len(order)), e.line or 0)

    loader.errors.sort(key=key)
    loader.warnings.sort(key=key)
    loader.plan.warnings = loader.warnings
    loader.plan.invalidate()


def check(path: str | os.PathLike, *, check_apps: bool = True) -> CheckReport:
    """Read a dialplan file and report every error and warning (never raises for its content)."""
    path = Path(path)
    loader = _Loader(check_apps)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        return CheckReport([DialplanError(f"cannot read the dialplan: {exc}", str(path))], [], None)
    loader.load_text(text, path.name, path.parent.resolve(), str(path.resolve()))
    _finish(loader)
    return CheckReport(loader.errors, loader.warnings, loader.plan)


def check_text(text: str, filename: str = "extensions.conf", base_dir: str | os.PathLike | None = None, *,
               check_apps: bool = True) -> CheckReport:
    """Like :func:`check` for text in memory; ``#include`` is relative to ``base_dir`` (default: cwd)."""
    loader = _Loader(check_apps)
    loader.load_text(text, filename, Path(base_dir or ".").resolve(), None)
    _finish(loader)
    return CheckReport(loader.errors, loader.warnings, loader.plan)


def parse(text: str, filename: str = "extensions.conf", base_dir: str | os.PathLike | None = None, *,
          check_apps: bool = True) -> Dialplan:
    """Parse dialplan text; raises :class:`DialplanErrors` listing every error found."""
    report = check_text(text, filename, base_dir, check_apps=check_apps)
    if report.errors:
        raise DialplanErrors(report.errors)
    assert report.plan is not None
    return report.plan


def load(path: str | os.PathLike, *, check_apps: bool = True) -> Dialplan:
    """Read an extensions.conf file; raises :class:`DialplanErrors` listing every error found."""
    report = check(path, check_apps=check_apps)
    if report.errors:
        raise DialplanErrors(report.errors)
    assert report.plan is not None
    return report.plan
