"""$[...] expressions: Asterisk's operators, precedence and errors (no Python eval)."""
import pytest

from labkit.dialplan import ExpressionError, evaluate
from labkit.dialplan.expressions import tokenize


@pytest.mark.parametrize("expr, result", [
    ("1 + 2", "3"), ("2+3*4", "14"), ("(2+3)*4", "20"), ("10 - 2 - 3", "5"),
    ("7 / 2", "3.5"), ("8 / 2", "4"), ("7 % 3", "1"), ("-7 % 3", "-1"), ("1.5 * 2", "3"),
    ("-3 - -2", "-1"), ("- 4", "-4"),
    ("1 = 1", "1"), ("1 == 2", "0"), ("010 = 10", "1"), ("abc = abc", "1"), ("abc != abd", "1"),
    ("abc < abd", "1"), ("10 < 9", "0"), ("9 < 10", "1"), ("2 <= 2", "1"), ("3 >= 4", "0"),
    ("1 & 0", "0"), ("5 & 6", "5"), ("x & \"\"", "0"), ("0 | x", "x"), ("7 | x", "7"), ("\"\" | y", "y"),
    ("!0", "1"), ("!abc", "0"), ("!\"\"", "1"),
    ("1 ? yes :: no", "yes"), ("0 ? yes :: no", "no"), ("\"\" ? yes :: no", "no"),
    ("3 > 2 & 2 > 1", "1"), ("1 & 2 | 3", "1"), ("1 + 2 = 3", "1"),
    ('5551234 : "(555)"', "555"), ("5551234 : 555", "3"), ("5551234 : 444", "0"), ('x : "(y)"', ""),
    ('foo =~ "o+"', "2"), ('foo : "o+"', "0"),
    ("a ~~ b", "ab"), ('"a b" = "a b"', "1"), ('"1+1"', "1+1"),
])
def test_evaluate(expr, result):
    assert evaluate(expr) == result


def test_operators_need_no_spaces():
    assert [t.text for t in tokenize("${X}+1<=2")] == ["${X}", "+", "1", "<=", "2"]
    assert evaluate("100=100") == "1"


def test_big_integers_stay_exact():
    assert evaluate("12345678901234567890 + 1") == "12345678901234567891"


@pytest.mark.parametrize("expr, message", [
    ("", "empty expression in $[]"),
    ("1 +", "expression ends where an operand was expected in $[1 +]"),
    ("abc + 1", "non-numeric argument 'abc' to '+' in $[abc + 1]"),
    ("1 / 0", "division by zero in $[1 / 0]"),
    ("(1", "missing ')' in $[(1]"),
    ("1 ? 2", "'?' without '::' in $[1 ? 2]"),
    ("a ~ b", "unexpected '~' at offset 2 in $[a ~ b]"),
    ('"abc', "unterminated '\"' in $[\"abc]"),
    ("1 2", "unexpected '2' at offset 2 in $[1 2]"),
    ('a : "("', "bad regular expression '(' (missing ), unterminated subpattern at position 0) in $[a : \"(\"]"),
])
def test_errors(expr, message):
    with pytest.raises(ExpressionError) as info:
        evaluate(expr)
    assert str(info.value) == message


def test_no_python_eval():
    with pytest.raises(ExpressionError):
        evaluate("__import__('os')")


def test_deep_nesting_is_a_clear_error():
    with pytest.raises(ExpressionError, match="nested too deeply"):
        evaluate("(" * 5000 + "1" + ")" * 5000)
