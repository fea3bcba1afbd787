"""Running calls through dialplans on the SimulatedChannel: flow, jumps, i/h, contexts, guards."""
import asyncio
from pathlib import Path

import pytest

from labkit.dialplan import (APPLICATIONS, Channel, DialplanLoopError, SimulatedChannel, application, load, parse,
                             run)
from labkit.dialplan.channel import parse_dial_targets
from labkit.dialplan.engine import simulate as dp_simulate
from labkit.dialplan.errors import ApplicationError

SAMPLE = Path(__file__).parents[2] / "data" / "dialplan" / "extensions.conf"


def call(plan, context, exten, **channel_options):
    chan = SimulatedChannel(**channel_options)
    result = asyncio.run(run(plan, chan, context, exten))
    return chan, result


@pytest.fixture(scope="module")
def sample():
    return load(SAMPLE)


def test_simulated_channel_implements_the_protocol():
    assert isinstance(SimulatedChannel(), Channel)


def test_internal_call_answered(sample):
    chan, result = call(sample, "internal", "101", caller_id_num="100")
    assert result.apps == ["NoOp", "GotoIf", "Dial", "NoOp"]  # the last NoOp is the h extension
    assert [s.exten for s in result.steps] == ["101", "101", "101", "h"]
    assert result.steps[2].data == "PJSIP/101,20"
    assert chan.variables["DIALSTATUS"] == "ANSWER"
    assert chan.action_names == ["dial", "dial result", "callee hangs up", "hangup"]
    assert (result.ended_by, result.hangup_cause) == ("hangup", 16)
    assert result.steps[-1].data == "Call from 100 ended: DIALSTATUS=ANSWER cause 16"


def test_internal_call_busy_goes_to_label(sample):
    chan, result = call(sample, "internal", "102", caller_id_num="100", dial_outcomes={"PJSIP/102": "BUSY"})
    assert [(s.priority, s.app) for s in result.steps] == [
        (1, "NoOp"), (2, "GotoIf"), (3, "Dial"), (4, "GotoIf"), (8, "Busy"), (1, "NoOp")]
    assert result.hangup_cause == 17


def test_unavailable_then_congestion(sample):
    chan, result = call(sample, "internal", "150", dial_outcomes="CHANUNAVAIL")
    assert result.apps[-3:] == ["Playback", "Congestion", "NoOp"]
    assert result.hangup_cause == 34


def test_no_answer_falls_to_message_and_hangup(sample):
    chan, result = call(sample, "internal", "101", dial_outcomes={"101": "NOANSWER"})
    assert ("play", "vm-nobodyavail") in [(a.name, a.detail) for a in chan.actions]
    assert chan.clock == pytest.approx(20 + 1)  # rang for the 20 s timeout, then a 1 s prompt


def test_calling_yourself(sample):
    chan, result = call(sample, "internal", "100", caller_id_num="100")
    assert result.apps == ["NoOp", "GotoIf", "Playback", "Hangup", "NoOp"]


def test_echo_test_until_caller_hangs_up(sample):
    chan, result = call(sample, "internal", "600", hangup_at=4.0)
    assert result.apps == ["Answer", "Playback", "Echo", "NoOp"]
    assert chan.clock == 4.0 and result.ended_by == "hangup"
    assert result.steps[0].context == "services"  # found through the include


def test_invalid_extension_goes_to_i(sample):
    chan, result = call(sample, "internal", "999")
    assert [(s.exten, s.app) for s in result.steps] == [("i", "Playback"), ("i", "Hangup"), ("h", "NoOp")]
    assert chan.variables["INVALID_EXTEN"] == "999"
    assert result.hangup_cause == 1


def test_contexts_separate_callers(sample):
    # an unknown caller in [default] reaches the services but never the phones
    chan, result = call(sample, "default", "101")
    assert result.apps == ["Playback", "Hangup"]
    assert result.hangup_cause == 21
    chan, result = call(sample, "default", "700")
    assert result.apps == ["Answer", "Wait", "Playback", "Hangup"]


def test_ivr_demo(sample):
    chan, result = call(sample, "internal", "800", digits="92", caller_id_num="101")
    assert chan.variables["TRIES"] == "2"
    assert ("play", "option-is-invalid") in [(a.name, a.detail) for a in chan.actions]
    assert [s.exten for s in result.steps if s.app == "Playback"][-1] == "700"
    chan, result = call(sample, "internal", "800")  # nobody presses anything: three tries then goodbye
    assert chan.variables["TRIES"] == "4"
    assert result.apps[-3:] == ["Playback", "Hangup", "NoOp"]


PLAN = """
[globals]
G=global
[test]
exten => 1,1,Set(X=5)
 same => n,GotoIf($[${X} > 3]?big:small)
 same => n(small),Set(R=small)
 same => n,Hangup()
 same => n(big),Set(R=big)
 same => n,Goto(2,1)
exten => 2,1,Set(R=${R}-two)
 same => n,Goto(test,3,named)
exten => 3,1,NoOp()
 same => n(named),Set(R=${R}-three)
 same => n,Gosub(sub,s,1(a,b))
 same => n,Set(R=${R}-back)
exten => _4X,1,Set(R=pattern)
 same => n,Goto(+2)
 same => n,Set(R=skipped)
 same => n,Set(R=${R}-jumped)
exten => 40,1,Set(R=literal)
exten => loop,1,Goto(1)
exten => fall,1,Set(DIALSTATUS=BUSY)
exten => err,1,Wait(${NOTANUMBER})
 same => n,Set(R=not reached)
exten => h,1,Set(H=ran ${EXTEN})
 same => n,Hangup()
 same => n,Set(H=not reached)
[sub]
exten => s,1,Set(R=${R}-sub${ARG1}${ARG2})
 same => n,Return()
"""


@pytest.fixture()
def plan():
    return parse(PLAN)


def test_gotoif_goto_labels_and_gosub(plan):
    chan, result = call(plan, "test", "1")
    assert chan.variables["R"] == "big-two-three-subab-back"
    assert chan.variables["H"] == "ran h"  # h ran; its Hangup() ended it
    assert result.ended_by == "fallthrough" and result.hangup_cause == 16


def test_pattern_supplies_priorities_a_literal_lacks(plan):
    # '40' has only priority 1; priorities 2.. come from the pattern _4X, as in Asterisk
    chan, result = call(plan, "test", "40")
    assert chan.variables["R"] == "literal-jumped"
    chan, result = call(plan, "test", "41")
    assert chan.variables["R"] == "pattern-jumped"


def test_fallthrough_cause_follows_dialstatus(plan):
    chan, result = call(plan, "test", "fall")
    assert result.ended_by == "fallthrough" and result.hangup_cause == 17


def test_runtime_error_ends_the_call_with_location(plan):
    chan, result = call(plan, "test", "err")
    assert result.ended_by == "error"
    assert str(result.error) == "extensions.conf:24: Wait: '' is not a number of seconds"
    assert chan.variables.get("R") is None and chan.hung_up
    assert "H" not in chan.variables  # after an error the h extension does not run


def test_loop_guard(plan):
    chan = SimulatedChannel()
    with pytest.raises(DialplanLoopError) as info:
        asyncio.run(run(plan, chan, "test", "loop", max_steps=50))
    assert str(info.value) == ("dialplan ran more than 50 steps, last at loop@test:1 (extensions.conf:22); "
                               "is there a Goto loop without a way out?")
    assert chan.hung_up


def test_no_such_context_and_no_i_handler(plan):
    chan, result = call(plan, "nope", "1")
    assert result.ended_by == "invalid" and chan.hangup_cause == 1
    chan, result = call(plan, "test", "999")
    assert result.ended_by == "invalid" and result.steps == []


def test_caller_hangs_up_during_dial_is_cancel():
    plan = parse("[c]\nexten => 1,1,Dial(PJSIP/2,30)\n same => n,Set(AFTER=yes)\n")
    chan, result = call(plan, "c", "1", dial_outcomes="NOANSWER", hangup_at=5)
    assert chan.variables["DIALSTATUS"] == "CANCEL"
    assert "AFTER" not in chan.variables


def test_dial_g_option_continues_after_answer():
    plan = parse("[c]\nexten => 1,1,Dial(PJSIP/2,,g)\n same => n,Set(AFTER=yes)\n same => n,Hangup()\n")
    chan, result = call(plan, "c", "1")
    assert chan.variables["AFTER"] == "yes"


def test_callerid_pattern_extension():
    plan = parse("[c]\nexten => 1,1,Set(WHO=anyone)\nexten => 1/_555XXXX,1,Set(WHO=known)\n"
                 "exten => 1/100,1,Set(WHO=boss)\n")
    assert call(plan, "c", "1", caller_id_num="5551234")[0].variables["WHO"] == "known"
    assert call(plan, "c", "1", caller_id_num="100")[0].variables["WHO"] == "boss"
    assert call(plan, "c", "1", caller_id_num="101")[0].variables["WHO"] == "anyone"
    assert call(plan, "c", "1", caller_id_num="")[0].variables["WHO"] == "anyone"


def test_registry_extension_and_case_insensitive_names():
    @application("LabkitTestApp")
    async def labkit_test_app(ex, data):
        """Record the data (test only)."""
        ex.set_variable("GOT", data.upper())

    try:
        plan = parse("[c]\nexten => 1,1,labkittestapp(${EXTEN}x)\n")
        chan, _ = call(plan, "c", "1")
        assert chan.variables["GOT"] == "1X"
    finally:
        del APPLICATIONS["labkittestapp"]


def test_dial_target_parsing():
    targets = parse_dial_targets("PJSIP/100&PJSIP/+15551234@trunk&SIP/provider/5551234&Local/200@internal/n")
    assert [(t.technology, t.endpoint, t.number) for t in targets[:3]] == [
        ("PJSIP", "100", None), ("PJSIP", "trunk", "+15551234"), ("SIP", "provider", "5551234")]
    assert (targets[3].exten, targets[3].context, str(targets[3])) == ("200", "internal", "Local/200@internal/n")
    for bad, message in [("PJSIP", "Dial target 'PJSIP' is not Tech/resource (e.g. PJSIP/100)"),
                         ("PJSIP/", "Dial target 'PJSIP/' is not Tech/resource (e.g. PJSIP/100)"),
                         ("", "Dial() needs at least one Tech/resource target"),
                         ("PJ SIP/1", "Dial target 'PJ SIP/1' has a bad technology 'PJ SIP'")]:
        with pytest.raises(ApplicationError) as info:
            parse_dial_targets(bad)
        assert str(info.value) == message


def test_multi_target_dial_outcome():
    plan = parse("[c]\nexten => 1,1,Dial(PJSIP/2&PJSIP/3,10)\n")
    chan, _ = call(plan, "c", "1", dial_outcomes={"2": "BUSY", "3": "NOANSWER"})
    assert chan.variables["DIALSTATUS"] == "NOANSWER"
    chan, _ = call(plan, "c", "1", dial_outcomes={"2": "BUSY", "3": "ANSWER"})
    assert chan.variables["DIALSTATUS"] == "ANSWER"
    chan, _ = call(plan, "c", "1", dial_outcomes={"*": "BUSY"})
    assert chan.variables["DIALSTATUS"] == "BUSY"


def test_simulate_blocks_with_or_without_a_running_loop(sample):
    chan, result = dp_simulate(sample, "internal", "700")
    assert result.apps == ["Answer", "Wait", "Playback", "Hangup", "NoOp"]

    async def inside_a_loop():  # as in Jupyter, where a loop is already running
        return dp_simulate(sample, "internal", "700")

    chan2, result2 = asyncio.run(inside_a_loop())
    assert result2.apps == result.apps and chan2.clock == chan.clock == 1.5


def test_small_applications():
    plan = parse("""[c]
exten => 1,1,Ringing()
 same => n,Progress()
 same => n,Playback(early,noanswer)
 same => n,Answer(500)
 same => n,Verbose(1,hello ${EXTEN})
 same => n,Log(notice,logged)
 same => n,Read(PIN,enter-pin,4,,,3)
 same => n,Read(MORE,,,,,1)
 same => n,Hangup(17)
""")
    logs = []
    chan = SimulatedChannel(digits="12345")
    result = asyncio.run(run(plan, chan, "c", "1", on_log=logs.append))
    assert chan.action_names == ["ringing", "progress", "play", "answer", "wait", "play", "read digits", "digits",
                                 "read digits", "digits", "hangup"]
    assert chan.actions[2].time == 0 and chan.actions[3].time == 1.0  # early media played before answer
    assert chan.actions[4].detail == "0.5 s"  # Answer(500): milliseconds, as in Asterisk
    assert chan.variables["PIN"] == "1234" and chan.variables["MORE"] == "5"
    assert chan.variables["READSTATUS"] == "OK"
    assert logs == ["hello 1", "NOTICE: logged"]
    assert result.hangup_cause == 17


def test_read_timeout_and_terminator():
    plan = parse("[c]\nexten => 1,1,Read(A,,,,,2)\n same => n,Read(B,,,,,2)\n")
    chan, _ = call(plan, "c", "1", digits="7#")
    assert (chan.variables["A"], chan.variables["B"], chan.variables["READSTATUS"]) == ("7", "", "TIMEOUT")


def test_goto_errors_at_runtime():
    plan = parse("[c]\nexten => 1,1,Set(T=nolabel)\n same => n,Goto(${T})\n"
                 "exten => 2,1,Set(T=nocontext,1,1)\n same => n,Goto(${T})\n"
                 "exten => 3,1,Return()\n")
    assert str(call(plan, "c", "1")[1].error) == "extensions.conf:3: goto target 'nolabel': no label 'nolabel' for 1 in [c]"
    assert str(call(plan, "c", "2")[1].error) == "extensions.conf:5: goto target 'nocontext,1,1': no context [nocontext]"
    assert str(call(plan, "c", "3")[1].error) == "extensions.conf:6: Return() without a Gosub()"


def test_own_extensions_before_included_ones_and_include_loops():
    plan = parse("""[a]
include => b
exten => _X.,1,Set(WHERE=a-pattern)
[b]
include => a
include => c
exten => 100,1,Set(WHERE=b-literal)
exten => 555,1,Set(WHERE=b-literal)
[c]
exten => 7,1,Set(WHERE=c)
""")
    # a context's own pattern beats a more specific literal in an included context
    assert call(plan, "a", "100")[0].variables["WHERE"] == "a-pattern"
    assert call(plan, "b", "100")[0].variables["WHERE"] == "b-literal"
    assert call(plan, "a", "7")[0].variables["WHERE"] == "c"  # one-character numbers miss _X.: found in c via b
    assert plan.search_order("a") == ["a", "b", "c"] and plan.search_order("b") == ["b", "a", "c"]
