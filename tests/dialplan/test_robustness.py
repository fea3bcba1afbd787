"""Bad input gives DialplanError subclasses, never another exception (fuzzed with hypothesis)."""
from hypothesis import given, settings
from hypothesis import strategies as st

from labkit.dialplan import DialplanError, ExpressionError, SimulatedChannel, VariableScope, evaluate, substitute
from labkit.dialplan.parser import check_text
from labkit.dialplan.timespec import TimeSpec

_conf_pieces = st.sampled_from([
    "[c]", "[globals]", "[general]", "[", "]", "exten", "same", "include", "=>", "=", ",", "1", "n", "n(a)",
    "hint", "_X.", "_1[2-", "Answer()", "Dial(PJSIP/1,20)", "Goto(a)", "GotoIf($[1]?1:2)", "Set(A=${B})",
    "${", "$[", "}", "]", "(", ")", ";", "\\;", ";--", "--;", "#include", '"x.conf"', "\n", " ", "/", "s",
    "GotoIfTime(09:00-17:00,mon-fri,*,*?1)", "Playback(x)", "Wait(x)", "NoOp(${LEN(x)})",
])


@settings(max_examples=400, deadline=None)
@given(st.lists(_conf_pieces, max_size=40).map("".join))
def test_check_never_crashes_on_config_soup(text):
    report = check_text(text, base_dir="/nonexistent-labkit-dir")
    for err in report.errors + report.warnings:
        assert isinstance(err, DialplanError) and err.line is not None


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet="0123456789abc ()+-*/%<>=!&|?:~\"$[]{}.\\", max_size=30))
def test_expressions_only_raise_expression_errors(text):
    try:
        evaluate(text)
    except ExpressionError:
        pass


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet="${}[]():ABCXLENIF?0123-+ ", max_size=30))
def test_substitution_only_raises_dialplan_errors(text):
    scope = VariableScope(SimulatedChannel(exten="100"), {"A": "1"})
    try:
        substitute(text, scope)
    except DialplanError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="0123456789:-,&*monfrisatdecjan/ ", max_size=30))
def test_time_specs_only_raise_dialplan_errors(text):
    try:
        TimeSpec.parse(text)
    except DialplanError:
        pass
