"""${...} substitution: substrings, nesting, globals, functions, Set targets."""
import pytest

from labkit.dialplan import ExpressionError, SimulatedChannel, VariableScope, substitute
from labkit.dialplan.variables import assign, condition_is_true, substring


def scope_for(exten="918005551234", **variables):
    chan = SimulatedChannel(caller_id_num="201", caller_id_name="Alice", exten=exten, context="internal")
    chan.variables.update(variables)
    return VariableScope(chan, {"TRUNK": "pstn", "X": "1", "SHADOWED": "global"})


@pytest.mark.parametrize("text, result", [
    ("${EXTEN}", "918005551234"),
    ("${EXTEN:1}", "18005551234"),           # strip an outside-line prefix
    ("${EXTEN:-4}", "1234"),
    ("${EXTEN:-4:4}", "1234"),
    ("${EXTEN:-7:3}", "555"),
    ("${EXTEN:0:-1}", "91800555123"),
    ("${EXTEN:1:3}", "180"),
    ("${EXTEN:2:-2}", "80055512"),
    ("${EXTEN:20}", ""),
    ("${EXTEN:-20:2}", "91"),
    ("${EXTEN::2}", "918005551234"),         # like Asterisk's sscanf: unreadable offset = whole value
    ("${CALLERID(num)}", "201"), ("${CALLERID(name)}", "Alice"), ("${CALLERID(all)}", '"Alice" <201>'),
    ("${CALLERID(num):1}", "01"),
    ("${CONTEXT}/${CHANNEL:0:3}", "internal/SIM"),
    ("${TRUNK}", "pstn"), ("${trunk}", "pstn"),  # globals, case-insensitive
    ("${SHADOWED}", "channel"), ("${GLOBAL(SHADOWED)}", "global"),
    ("${VAR_${X}}", "one"),                  # nested
    ("${LEN(${EXTEN})}", "12"),
    ("${IF($[${LEN(${EXTEN})} > 10]?long:short)}", "long"),
    ("${IF(0?a:b)}", "b"), ("${IF(1?a)}", "a"), ("${IF(0?a)}", ""),
    ("${ISNULL(${UNSET})}${EXISTS(${EXTEN})}", "11"),
    ("${TOUPPER(abc)}${TOLOWER(DEF)}", "ABCdef"),
    ('${REGEX("^9" ${EXTEN})}', "1"),
    ("${UNSET}", ""),
    ("call $[1 + ${X}] now", "call 2 now"),
    ("no variables", "no variables"),
    ("$5 and $ alone", "$5 and $ alone"),
])
def test_substitute(text, result):
    assert substitute(text, scope_for(VAR_1="one", SHADOWED="channel")) == result


def test_substring_rule_matches_asterisk():
    assert substring("1234567", -4, 3) == "456"
    assert substring("123456789", 1, -3) == "23456"
    assert substring("abc", 1, -5) == ""


@pytest.mark.parametrize("text, message", [
    ("${EXTEN", "missing '}' after '${' in '${EXTEN'"),
    ("$[1 +", "missing ']' after '$[' in '$[1 +'"),
    ("${NOSUCH(1)}", "unknown function 'NOSUCH'"),
    ("${CALLERID(foo)}", "CALLERID(foo): expected num, name or all"),
    ("${IF(nocondition)}", "IF(nocondition): expected IF(condition?true:false)"),
])
def test_errors(text, message):
    with pytest.raises(ExpressionError) as info:
        substitute(text, scope_for())
    assert str(info.value).startswith(message)


def test_assign_variables_and_functions():
    scope = scope_for()
    assign("FOO", "bar", scope)
    assign("foo", "baz", scope)  # case-insensitive: replaces, does not duplicate
    assert scope.variables == {"foo": "baz"}
    assign("__INHERIT", "x", scope)
    assert scope.lookup("INHERIT") == "x"
    assign("CALLERID(num)", "5551234", scope)
    assign("CALLERID(name)", "Bob", scope)
    assert substitute("${CALLERID(all)}", scope) == '"Bob" <5551234>'
    assign("CALLERID(all)", '"Carol" <300>', scope)
    assert (scope.channel.caller_id_name, scope.channel.caller_id_num) == ("Carol", "300")
    assign("GLOBAL(NEWG)", "1", scope)
    assert scope.globals["NEWG"] == "1"
    with pytest.raises(ExpressionError, match="function LEN\\(\\) cannot be written"):
        assign("LEN(x)", "1", scope)


@pytest.mark.parametrize("text, truth", [("", False), ("0", False), ("1", True), ("00", False), ("-2", True),
                                         ("abc", True), (" 0", False), ("0abc", False)])
def test_condition_is_true_like_pbx_checkcondition(text, truth):
    assert condition_is_true(text) is truth
