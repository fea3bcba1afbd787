"""Extension patterns: what matches, and Asterisk's most-specific-first order."""
import pytest

from labkit.dialplan import MatchKind, Pattern, PatternError, compare, sort_key


@pytest.mark.parametrize("pattern, number, expected", [
    ("_X", "5", True), ("_X", "55", False), ("_X", "a", False),
    ("_Z", "0", False), ("_Z", "1", True),
    ("_N", "1", False), ("_N", "2", True), ("_N", "9", True),
    ("_1XX", "101", True), ("_1XX", "1", False), ("_1XX", "1011", False), ("_1XX", "201", False),
    ("_[1-5]", "3", True), ("_[1-5]", "6", False),
    ("_[a-c]", "b", True), ("_[a-c]", "B", False),
    ("_[135-7]", "3", True), ("_[135-7]", "6", True), ("_[135-7]", "4", False), ("_[135-7]", "8", False),
    ("_9.", "9", False), ("_9.", "91", True), ("_9.", "912345", True),
    ("_9!", "9", True), ("_9!", "912", True),
    ("_x.", "5", False), ("_nxx", "234", True), ("_zX", "10", True),  # N/X/Z in either case
    ("_1-XXX", "1234", True), ("_1XXX", "1-234", True),  # '-' is decoration
    ("_1.5", "12", True),  # nothing after '.' is examined
    ("100", "100", True), ("100", "1000", False), ("100", "10", False),
    ("s", "s", True), ("s", "S", False),  # literal names are case-sensitive
    ("555-1234", "5551234", True),
])
def test_matches(pattern, number, expected):
    assert Pattern(pattern).matches(number) is expected


def test_early_match_kind():
    assert Pattern("_9!").match("9") is MatchKind.EARLY
    assert Pattern("_9.").match("91") is MatchKind.MATCH
    assert Pattern("_9.").match("8") is MatchKind.NONE


def test_can_match_and_matches_more_for_overlap_dialling():
    p = Pattern("_1XX")
    assert p.can_match("1") and p.matches_more("1")
    assert p.can_match("101") and not p.matches_more("101")
    assert not p.can_match("2")
    assert Pattern("_9.").matches_more("91")  # '.' can always take more
    assert not Pattern("_9!").matches_more("91")  # '!' decides early
    assert Pattern("100").can_match("10") and not Pattern("100").can_match("11")


def ordered(*names):
    return sorted(names, key=sort_key)


def test_literal_before_pattern():
    assert ordered("_X.", "100", "_1XX", "s") == ["100", "s", "_1XX", "_X."]


def test_asterisk_documented_orders():
    # 6123: _61XX is more specific than _6XXX at the 2nd position
    assert ordered("_6XXX", "_61XX") == ["_61XX", "_6XXX"]
    # 5551234 matches _NXXXXXX and _X. ; 15551234567 matches _1NXXNXXXXXX and _X.
    assert ordered("_X.", "_NXXXXXX") == ["_NXXXXXX", "_X."]
    assert ordered("_X.", "_1NXXNXXXXXX") == ["_1NXXNXXXXXX", "_X."]
    # wildcards last, '.' before '!'
    assert ordered("_!", "_.", "_X.") == ["_X.", "_.", "_!"]
    # class sizes: literal(1) < N(8) < Z(9) < X(10)
    assert ordered("_XXX", "_ZXX", "_NXX", "_2XX") == ["_2XX", "_NXX", "_ZXX", "_XXX"]
    # a set scores by its size: [1-5] (5) beats N (8); [12] (2) beats [1-5]
    assert ordered("_NXX", "_[1-5]XX", "_[12]XX") == ["_[12]XX", "_[1-5]XX", "_NXX"]
    # position by position, not by total number of wildcards
    assert ordered("_X11111", "_1XXXXX") == ["_1XXXXX", "_X11111"]


def test_equal_size_sets_ordered_by_lower_characters():
    assert ordered("_[34]", "_[12]") == ["_[12]", "_[34]"]
    assert compare("_[12]", "_[12]") == 0
    assert compare("_[1-2]", "_[12]") == 0  # the same set written two ways


def test_compare_sign():
    assert compare("100", "_1XX") == -1
    assert compare("_X.", "_1XX") == 1


def test_describe_positions():
    assert Pattern("_1N[0-4]X.").describe() == ["1", "N(8)", "[0-4](5)", "X(10)", "."]


@pytest.mark.parametrize("text, message", [
    ("_1[23", "unclosed '[' in pattern '_1[23'"),
    ("_1]", "']' without '[' in pattern '_1]'"),
    ("_[5-1]", "empty range '5-1' in pattern '_[5-1]'"),
    ("_", "pattern '_' has no positions after '_'"),
    ("1 0", "extension '1 0' has a space or non-ASCII character"),
    ("", "empty extension name"),
])
def test_bad_patterns(text, message):
    with pytest.raises(PatternError) as info:
        Pattern(text)
    assert str(info.value) == message


from hypothesis import given, settings
from hypothesis import strategies as st

_pattern_atoms = st.sampled_from(["X", "Z", "N", "x", "1", "0", "*", "#", "[1-5]", "[13]", "[0-24-6]", "-"])


@settings(max_examples=300, deadline=None)
@given(body=st.lists(_pattern_atoms, min_size=1, max_size=6), tail=st.sampled_from(["", ".", "!"]),
       number=st.text(alphabet="0123456789*#-", max_size=8))
def test_fast_regex_path_agrees_with_asterisk_walk(body, tail, number):
    """`matches` uses a compiled regex; it must agree with the position-by-position walk."""
    text = "_" + "".join(body) + tail
    if text.strip("_-") == "":
        return
    p = Pattern(text)
    assert p.matches(number) == (p.match(number) != MatchKind.NONE)
