"""``$[ ... ]`` expressions: a tokenizer and a recursive-descent parser, never Python's eval.

Introduced in notebook 07. Semantics follow Asterisk's expression evaluator (ast_expr2):

* every operand is a string; one that looks like a number (``42``, ``-3``, ``2.5``) is a number;
* ``+ - * / %`` need numbers; whole numbers stay exact integers, ``7 / 2`` is ``3.5`` (Asterisk
  divides in floating point), ``%`` takes the sign of the dividend like C's ``fmod``;
* ``= (==) != < > <= >=`` compare as numbers when both sides are numbers, else as strings; 1 or 0;
* ``a | b`` is a unless a is empty or zero, else b; ``a & b`` is a unless either is empty or zero,
  else 0; ``!a`` is 1 for empty or zero, else 0; unary ``-`` negates;
* ``a : re`` matches a regular expression anchored at the start, ``a =~ re`` anywhere: the first
  ``( )`` group if the regex has one, else the number of characters matched (0 when none);
* ``a ~~ b`` concatenates; ``cond ? a :: b`` picks a or b (lowest precedence);
* ``"double quotes"`` make one operand of text with spaces or operator characters.

Precedence, lowest first: ``?::``, ``|``, ``&``, comparisons, ``+ -``, ``* / %``, unary ``- !``,
``: =~``, ``~~``; parentheses group. Operators need no spaces around them (``$[${X}+1]``).
One simplification: quotes are removed from operands, so ``$["a b"]`` is ``a b``.
"""
from __future__ import annotations

import functools

import math
import re
from dataclasses import dataclass

from .errors import ExpressionError

__all__ = ["evaluate", "tokenize", "Token", "is_number", "format_value"]

_OPERATORS = ("::", "==", "!=", "<=", ">=", "=~", "~~", "?", "|", "&", "=", "<", ">", "+", "-", "*",
              "/", "%", "!", ":", "(", ")")
_OPERATOR_CHARS = set("?:|&=!<>+-*/%~()")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)\Z")

Value = int | float | str


@dataclass(frozen=True)
class Token:
    """An operator (``kind='op'``) or an operand (``kind='str'``), with its offset in the text."""

    kind: str
    text: str
    offset: int


def tokenize(text: str) -> list[Token]:
    """Split an expression into operators and operands (quoted strings lose their quotes)."""
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
        elif c == '"':
            j, buf = i + 1, []
            while j < n and text[j] != '"':
                if text[j] == "\\" and j + 1 < n:
                    j += 1
                buf.append(text[j])
                j += 1
            if j >= n:
                raise ExpressionError(f"unterminated '\"' in $[{text}]")
            tokens.append(Token("str", "".join(buf), i))
            i = j + 1
        elif c in _OPERATOR_CHARS:
            for op in _OPERATORS:
                if text.startswith(op, i):
                    tokens.append(Token("op", op, i))
                    i += len(op)
                    break
            else:
                raise ExpressionError(f"unexpected '{c}' at offset {i} in $[{text}]")
        else:
            j = i
            while j < n and not text[j].isspace() and text[j] not in _OPERATOR_CHARS and text[j] != '"':
                j += 1
            tokens.append(Token("str", text[i:j], i))
            i = j
    return tokens


def is_number(value: Value) -> bool:
    return not isinstance(value, str) or bool(_NUMBER.match(value))


def _num(value: Value) -> int | float:
    if not isinstance(value, str):
        return value
    return float(value) if ("." in value) else int(value)


def _is_false(value: Value) -> bool:
    """Empty or numerically zero: what ``|``, ``&``, ``!`` and ``?::`` treat as false."""
    if isinstance(value, str):
        if value == "":
            return True
        return is_number(value) and _num(value) == 0
    return value == 0


def format_value(value: Value) -> str:
    """A result as Asterisk prints it: integers without a decimal point."""
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer():
            return str(int(value))
        return f"{value:.15g}"
    return str(value)


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.tokens = tokenize(text)
        self.pos = 0

    def error(self, message: str) -> ExpressionError:
        return ExpressionError(f"{message} in $[{self.text}]")

    def peek(self) -> Token | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take_op(self, *ops: str) -> str | None:
        tok = self.peek()
        if tok is not None and tok.kind == "op" and tok.text in ops:
            self.pos += 1
            return tok.text
        return None

    def parse(self) -> Value:
        if not self.tokens:
            raise self.error("empty expression")
        value = self.ternary()
        tok = self.peek()
        if tok is not None:
            raise self.error(f"unexpected '{tok.text}' at offset {tok.offset}")
        return value

    def ternary(self) -> Value:
        cond = self.or_()
        if self.take_op("?"):
            yes = self.ternary()
            if not self.take_op("::"):
                raise self.error("'?' without '::'")
            no = self.ternary()
            return no if _is_false(cond) else yes
        return cond

    def or_(self) -> Value:
        left = self.and_()
        while self.take_op("|"):
            right = self.and_()
            left = right if _is_false(left) else left
        return left

    def and_(self) -> Value:
        left = self.compare()
        while self.take_op("&"):
            right = self.compare()
            left = 0 if (_is_false(left) or _is_false(right)) else left
        return left

    def compare(self) -> Value:
        left = self.additive()
        while (op := self.take_op("=", "==", "!=", "<", ">", "<=", ">=")) is not None:
            right = self.additive()
            if is_number(left) and is_number(right):
                a, b = _num(left), _num(right)
            else:
                a, b = format_value(left), format_value(right)
            result = {"=": a == b, "==": a == b, "!=": a != b, "<": a < b, ">": a > b,
                      "<=": a <= b, ">=": a >= b}[op]
            left = int(result)
        return left

    def _numbers(self, op: str, left: Value, right: Value) -> tuple[int | float, int | float]:
        for v in (left, right):
            if not is_number(v):
                raise self.error(f"non-numeric argument '{v}' to '{op}'")
        return _num(left), _num(right)

    def additive(self) -> Value:
        left = self.multiplicative()
        while (op := self.take_op("+", "-")) is not None:
            right = self.multiplicative()
            a, b = self._numbers(op, left, right)
            left = a + b if op == "+" else a - b
        return left

    def multiplicative(self) -> Value:
        left = self.unary()
        while (op := self.take_op("*", "/", "%")) is not None:
            right = self.unary()
            a, b = self._numbers(op, left, right)
            if op == "*":
                left = a * b
            elif b == 0:
                raise self.error("division by zero")
            elif op == "/":
                if isinstance(a, int) and isinstance(b, int) and a % b == 0:
                    left = a // b
                else:
                    left = a / b
            else:
                left = math.fmod(a, b) if (isinstance(a, float) or isinstance(b, float)) else _int_fmod(a, b)
        return left

    def unary(self) -> Value:
        if self.take_op("-"):
            value = self.unary()
            if not is_number(value):
                raise self.error(f"non-numeric argument '{value}' to unary '-'")
            return -_num(value)
        if self.take_op("!"):
            return int(_is_false(self.unary()))
        return self.regex()

    def regex(self) -> Value:
        left = self.concat()
        while (op := self.take_op(":", "=~")) is not None:
            right = self.concat()
            left = _regex_match(format_value(left), format_value(right), anchored=(op == ":"), parser=self)
        return left

    def concat(self) -> Value:
        left = self.primary()
        while self.take_op("~~"):
            left = format_value(left) + format_value(self.primary())
        return left

    def primary(self) -> Value:
        tok = self.peek()
        if tok is None:
            raise self.error("expression ends where an operand was expected")
        if tok.kind == "str":
            self.pos += 1
            return tok.text
        if tok.text == "(":
            self.pos += 1
            value = self.ternary()
            if not self.take_op(")"):
                raise self.error("missing ')'")
            return value
        raise self.error(f"unexpected '{tok.text}' at offset {tok.offset}")


def _int_fmod(a: int, b: int) -> int:
    r = abs(a) % abs(b)
    return -r if a < 0 else r


def _regex_match(text: str, pattern: str, anchored: bool, parser: _Parser) -> Value:
    try:
        rx = re.compile(pattern)
    except re.error as exc:
        raise parser.error(f"bad regular expression '{pattern}' ({exc})") from None
    m = rx.match(text) if anchored else rx.search(text)
    if rx.groups:
        return (m.group(1) or "") if m else ""
    return (m.end() - m.start()) if m else 0


@functools.lru_cache(maxsize=4096)
def evaluate(text: str) -> str:
    """Evaluate the inside of ``$[...]`` (already ``${}``-substituted) and return the result text.

    A pure function of its text, so results are cached: calls through the same dialplan evaluate
    the same few comparisons (``"BUSY" = "BUSY"``) again and again.

    >>> evaluate("2 + 3 * 4")
    '14'
    >>> evaluate('"abc" = abc')
    '1'
    """
    try:
        return format_value(_Parser(text).parse())
    except RecursionError:
        raise ExpressionError(f"expression nested too deeply in $[{text[:40]}...]") from None
