"""Reading extensions.conf: syntax, exact error messages with file:line, includes, warnings."""
from pathlib import Path

import pytest

from labkit.dialplan import DialplanErrors, check, load, parse
from labkit.dialplan.parser import check_text

DATA = Path(__file__).parent / "data"


def test_basic_syntax():
    plan = parse("""
[globals]
TIMEOUT=20            ; a comment
[internal]
exten => 100,1,Answer()
exten = 100,n(greet),Playback(hello-world)
 same => n,Dial(PJSIP/100&PJSIP/101,${TIMEOUT},tT)
exten => 100,hint,PJSIP/100
exten => 101,1,NoOp(semi\\;colon)
exten => 101,5,Hangup
exten => _1XX/555XXXX,1,Busy()
exten => s,1,Set(A=1,2)
include => other
include => timed,9:00-17:00,mon-fri,*,*
;-- a block comment
exten => 999,1,NoOp()
--;
[other]
exten => i,1,Hangup()
""", check_apps=True)
    assert plan.globals == {"TIMEOUT": "20"}
    ctx = plan["internal"]
    ext = ctx.get("100")
    assert [(p.number, p.app, p.data, p.label) for p in ext.ordered_priorities()] == [
        (1, "Answer", "", None), (2, "Playback", "hello-world", "greet"),
        (3, "Dial", "PJSIP/100&PJSIP/101,${TIMEOUT},tT", None)]
    assert ext.hint == "PJSIP/100" and ext.labels == {"greet": 2}
    assert ctx.get("101").priorities[1].data == "semi;colon"
    assert ctx.get("101").priorities[5].app == "Hangup"
    assert ctx.get("_1XX", "555XXXX").callerid == "555XXXX"
    assert ctx.get("s").priorities[1].data == "A=1,2"
    assert [(i.name, i.timespec) for i in ctx.includes] == [("other", None), ("timed", "9:00-17:00,mon-fri,*,*")]
    assert ctx.get("999") is None
    assert ext.priorities[3].location == "extensions.conf:7"


def test_every_error_reported_with_file_and_line():
    report = check(DATA / "broken.conf")
    assert [str(e) for e in report.errors] == [
        "broken.conf:2: 'exten' outside any [context]",
        "broken.conf:4: priority 'n' before any priority 1 for extension 100 in context [default]",
        "broken.conf:5: unknown application 'Answr' (did you mean Answer?)",
        "broken.conf:6: duplicate priority 1 for extension 101 in context [default] (first at broken.conf:5)",
        "broken.conf:7: unclosed '[' in pattern '_1[23'",
        "broken.conf:9: Wait(soon): Wait: 'soon' is not a number of seconds",
        "broken.conf:10: Goto(nowhere): target 'nowhere': no label 'nowhere' for extension 103 in [default]",
        "broken.conf:11: missing ')' in 'Playback(hello'",
        "broken.conf:12: unknown keyword 'frobnicate' in context [default] (expected exten, same, include or ignorepat)",
        f"broken.conf:14: #include \"nonexistent.conf\": no such file ({(DATA / 'nonexistent.conf').resolve()})",
    ]
    assert [str(w) for w in report.warnings] == ["broken.conf:13: context [default] includes unknown context [missing]"]
    with pytest.raises(DialplanErrors) as info:
        load(DATA / "broken.conf")
    assert len(info.value.errors) == 10
    assert str(info.value).splitlines()[0] == "broken.conf:2: 'exten' outside any [context]"


def test_same_after_failed_pattern_uses_previous_extension_context():
    report = check_text("[c]\nexten => 1,1,NoOp()\nsame => n,Dial(PJSIP)\n")
    assert [str(e) for e in report.errors] == [
        "extensions.conf:3: Dial(PJSIP): Dial target 'PJSIP' is not Tech/resource (e.g. PJSIP/100)"]


def test_include_relative_to_including_file_and_globals_substituted():
    plan = load(DATA / "main.conf")
    assert plan.globals == {"PREFIX": "9", "LONG": "900"}
    assert plan.files == ["main.conf", "sub/phones.conf", "sub/more.conf"]
    ext = plan["phones"].get("200")
    assert [(p.app, p.location) for p in ext.ordered_priorities()] == [
        ("Answer", "sub/phones.conf:3"), ("Hangup", "sub/more.conf:1")]
    # extension names are not substituted: `_${PREFIX}X.` is a literal-ish pattern, as in Asterisk
    assert plan["default"].get("_${PREFIX}X.") is not None


def test_include_loop_is_an_error():
    report = check(DATA / "loop_a.conf")
    assert len(report.errors) == 1
    assert str(report.errors[0]).startswith('loop_b.conf:1: #include "loop_a.conf" includes itself')


@pytest.mark.parametrize("text, message", [
    ("[c]\nexten => 1,0,NoOp()", "extensions.conf:2: priority 0 for extension 1 in context [c]: priorities start at 1"),
    ("[c]\nexten => 1,x,NoOp()", "extensions.conf:2: bad priority 'x' for extension 1 in context [c] "
                                 "(expected a number, 'n' or 'hint', optionally with a (label))"),
    ("[c]\nexten => 1,1", "extensions.conf:2: exten needs 'extension,priority,application' (got '1,1')"),
    ("[c]\nexten => 1,1,", "extensions.conf:2: missing application after the priority"),
    ("[c]\nexten => 1,1,No Op()", "extensions.conf:2: bad application name 'No Op' in 'No Op()'"),
    ("[c]\nexten => 1,1,NoOp() x", "extensions.conf:2: text after ')' in 'NoOp() x'"),
    ("[c]\nexten => 1,1(a),NoOp()\nsame => 2(a),NoOp()",
     "extensions.conf:3: duplicate label 'a' for extension 1 in context [c] (first at extensions.conf:2)"),
    ("[c]\nexten => 1,hint,PJSIP/1\nexten => 1,hint,PJSIP/2",
     "extensions.conf:3: second hint for extension 1 in context [c] (first at extensions.conf:2)"),
    ("[c]\nsame => n,NoOp()", "extensions.conf:2: 'same' before any 'exten' in context [c]"),
    ("[c\n", "extensions.conf:1: unclosed '[' in '[c'"),
    ("[c](!)\n", "extensions.conf:1: context templates ('(!)' after [c]) are not supported"),
    ("[c]\nswitch => Realtime", "extensions.conf:2: 'switch' (remote dialplan switches) is not supported"),
    ("[c]\n#exec foo", "extensions.conf:2: unsupported directive '#exec' (only #include is)"),
    ("[c]\njust some words", "extensions.conf:2: cannot read 'just some words': expected '[context]' or 'key => value'"),
    ("[c]\nexten => 1/,1,NoOp()", "extensions.conf:2: extension '1/' has an empty caller ID after '/'"),
    ("[globals]\nA=${B", "extensions.conf:2: global A: missing '}' after '${' in '${B'"),
    ("[c]\nexten => 1,1,Goto(d,1,1)", "extensions.conf:2: Goto(d,1,1): target 'd,1,1': no context [d]"),
    ("[c]\nexten => 1,1,Goto(c,2,1)", "extensions.conf:2: Goto(c,2,1): target 'c,2,1': no extension 2 in [c] or what it includes"),
    ("[c]\nexten => 1,1,GotoIf($[1]?1:nolabel)", None),  # has a variable part: not checked statically
    ("[c]\nexten => 1,1,GotoIf(1?2:1)",
     "extensions.conf:2: GotoIf(1?2:1): target '2': no priority 2 for extension 1 in [c]"),
    ("[c]\nexten => 1,1,Hangup(300)", "extensions.conf:2: Hangup(300): Hangup cause '300' is not a Q.850 cause number (1-127)"),
    ("[c]\nexten => 1,1,Playback()", "extensions.conf:2: Playback(): Playback() needs a prompt name, e.g. Playback(hello-world)"),
])
def test_single_error_messages(text, message):
    report = check_text(text)
    assert [str(e) for e in report.errors] == ([message] if message else [])


def test_warnings():
    report = check_text("[c]\nexten => _1.5,1,NoOp()\nexten => 2,2,NoOp()\nexten => 3,1,NoOp()\nsame => 3,NoOp()\n")
    assert report.ok
    assert [str(w) for w in report.warnings] == [
        "extensions.conf:2: pattern '_1.5': '5' after '.' or '!' is never matched",
        "extensions.conf:3: extension 2 in context [c] has no priority 1: calls cannot start there, only a Goto can reach it",
        "extensions.conf:5: extension 3 in context [c] jumps from priority 1 to 3: execution stops after 1 unless a Goto reaches 3",
    ]


def test_unknown_apps_allowed_when_not_checking():
    plan = parse("[c]\nexten => 1,1,VoiceMail(100)\n", check_apps=False)
    assert plan["c"].get("1").priorities[1].app == "VoiceMail"


def test_repeated_context_adds_to_it():
    plan = parse("[c]\nexten => 1,1,NoOp()\n[d]\nexten => 2,1,NoOp()\n[c]\nexten => 3,1,NoOp()\n")
    assert sorted(k[0] for k in plan["c"].extensions) == ["1", "3"]


def test_sample_dialplan_is_clean():
    report = check(Path(__file__).parents[2] / "data" / "dialplan" / "extensions.conf")
    assert report.errors == [] and report.warnings == []
    assert set(report.plan.contexts) == {"internal", "services", "default"}


@pytest.mark.parametrize("text, message", [
    ("[c]\nexten => 1,1,NoOp(${LENN(x)})", "extensions.conf:2: NoOp(${LENN(x)}): unknown function 'LENN'"),
    ("[c]\nexten => 1,1,NoOp(${EXTEN)", "extensions.conf:2: NoOp(${EXTEN): missing '}' after '${' in '${EXTEN'"),
    ("[c]\nexten => 1,1,Set(A=$[1 + ${X})", "extensions.conf:2: Set(A=$[1 + ${X}): missing ']' after '$[' in 'A=$[1 + ${X}'"),
])
def test_static_problems_in_arguments_with_variables(text, message):
    assert [str(e) for e in check_text(text).errors] == [message]


def test_byte_order_mark_and_crlf(tmp_path):
    path = tmp_path / "extensions.conf"
    path.write_bytes("\ufeff[c]\r\nexten => 1,1,NoOp()\r\n".encode("utf-8"))
    plan = load(path)
    assert plan["c"].get("1").priorities[1].location == "extensions.conf:2"


def test_show_format():
    from labkit.dialplan import format_dialplan
    plan = parse("[c]\nexten => 1,1,NoOp()\n same => n(two),Hangup(16)\nexten => 1/_5X.,1,Busy()\ninclude => d\n[d]\n")
    assert format_dialplan(plan, "c").splitlines() == [
        "[ Context 'c' created by 'pbx_config' ]",
        "  '1' (CID match '_5X.') => 1. Busy()                                     [extensions.conf:4]",
        "  '1' =>            1. NoOp()                                     [extensions.conf:2]",
        "  [two]             2. Hangup(16)                                 [extensions.conf:3]",
        "  Include =>        'd'                                           [pbx_config]",
        "",
        "-= 2 extensions (3 priorities) in 1 context. =-",
    ]
