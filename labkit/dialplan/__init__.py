"""labkit.dialplan: Asterisk-style dialplans - extensions.conf, patterns, ${VAR}/$[expr], applications.

Introduced in notebook 07. The PBX loads a plan and runs each incoming call through it::

    from labkit.dialplan import load, run, SimulatedChannel
    plan = load("data/dialplan/extensions.conf")
    chan = SimulatedChannel(caller_id_num="100", dial_outcomes={"PJSIP/101": "BUSY"})
    result = asyncio.run(run(plan, chan, "internal", "101"))

Modules: ``patterns`` (matching and Asterisk's match order), ``parser`` (extensions.conf),
``model`` (contexts, extensions, lookups), ``expressions`` (``$[...]``), ``variables``
(``${...}`` and functions), ``applications`` (the registry), ``channel`` (the interface
applications drive, and a simulator), ``engine`` (running a call), ``show`` (``dialplan show``).
"""
from .applications import APPLICATIONS, Application, application, get_application, split_args
from .channel import DIAL_STATUSES, Action, Channel, DialTarget, SimulatedChannel, parse_dial_targets
from .engine import Execution, RunResult, Step, run, simulate
from .errors import (ApplicationError, DialplanError, DialplanErrors, DialplanLoopError, ExpressionError,
                     PatternError)
from .expressions import evaluate
from .model import Context, Dialplan, Extension, Found, Include, Priority
from .parser import CheckReport, check, check_text, load, parse
from .patterns import MatchKind, Pattern, compare, sort_key
from .show import format_dialplan
from .variables import FUNCTIONS, VariableScope, dialplan_function, substitute

__all__ = [
    "APPLICATIONS", "Application", "application", "get_application", "split_args",
    "DIAL_STATUSES", "Action", "Channel", "DialTarget", "SimulatedChannel", "parse_dial_targets",
    "Execution", "RunResult", "Step", "run", "simulate",
    "ApplicationError", "DialplanError", "DialplanErrors", "DialplanLoopError", "ExpressionError", "PatternError",
    "evaluate", "Context", "Dialplan", "Extension", "Found", "Include", "Priority",
    "CheckReport", "check", "check_text", "load", "parse",
    "MatchKind", "Pattern", "compare", "sort_key", "format_dialplan",
    "FUNCTIONS", "VariableScope", "dialplan_function", "substitute", "DEFAULT_DIALPLAN",
]

from pathlib import Path as _Path

#: The sample dialplan the PBX embeds as its default (data/dialplan/extensions.conf in a checkout).
DEFAULT_DIALPLAN = _Path(__file__).resolve().parents[2] / "data" / "dialplan" / "extensions.conf"
