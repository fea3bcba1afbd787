"""Time conditions: timed includes, GotoIfTime, IFTIME - all against an injected clock."""
import asyncio
from datetime import datetime, timezone

import pytest

from labkit.dialplan import DialplanError, SimulatedChannel, parse, run, simulate
from labkit.dialplan.parser import check_text
from labkit.dialplan.timespec import TimeSpec

THU_9 = datetime(2026, 11, 26, 9, 0)  # a Thursday
THU_1759 = datetime(2026, 11, 26, 17, 59, 59)
THU_18 = datetime(2026, 11, 26, 18, 0)
SAT_10 = datetime(2026, 11, 28, 10, 0)


@pytest.mark.parametrize("spec, when, expected", [
    ("09:00-17:59,mon-fri,*,*", THU_9, True),
    ("09:00-17:59,mon-fri,*,*", THU_1759, True),      # the end minute is included
    ("09:00-17:59,mon-fri,*,*", THU_18, False),
    ("09:00-17:59,mon-fri,*,*", SAT_10, False),
    ("*,sat&sun,*,*", SAT_10, True),
    ("22:00-05:59,*,*,*", datetime(2026, 1, 1, 23, 30), True),   # ranges wrap around midnight
    ("22:00-05:59,*,*,*", datetime(2026, 1, 1, 6, 0), False),
    ("*,fri-mon,*,*", datetime(2026, 11, 30, 12, 0), True),      # Monday, inside fri-mon
    ("*,*,25,dec", datetime(2026, 12, 25, 8, 0), True),
    ("*,*,1-7,*", datetime(2026, 12, 8, 8, 0), False),
    ("*,*,*,dec-feb", datetime(2026, 1, 15), True),
    ("*,*,*,3", datetime(2026, 3, 15), True),
    ("12:00", datetime(2026, 3, 15, 12, 0, 30), True),
    ("09:00-17:59,*,*,*,Europe/Berlin", datetime(2026, 11, 26, 8, 30, tzinfo=timezone.utc), True),  # 09:30 CET
    ("09:00-17:59,*,*,*,Europe/Berlin", datetime(2026, 11, 26, 17, 30, tzinfo=timezone.utc), False),
])
def test_matches(spec, when, expected):
    assert TimeSpec.parse(spec).matches(when) is expected


@pytest.mark.parametrize("spec, message", [
    ("25:00-26:00,*,*,*", "time spec '25:00-26:00,*,*,*': '25:00' is not a time HH:MM"),
    ("9-17,*,*,*", "time spec '9-17,*,*,*': '9' is not a time HH:MM"),
    ("*,funday,*,*", "time spec '*,funday,*,*': 'funday' is not a weekday (sun-sat)"),
    ("*,*,32,*", "time spec '*,*,32,*': '32' is not a day of the month (1-31)"),
    ("*,*,*,13", "time spec '*,*,*,13': '13' is not a month (jan-dec or 1-12)"),
    ("*,*,*,*,Mars/Base", "time spec '*,*,*,*,Mars/Base': unknown time zone 'Mars/Base'"),
    ("*,*,*,*,*,*", "time spec '*,*,*,*,*,*': expected times,weekdays,monthdays,months[,timezone]"),
])
def test_bad_specs(spec, message):
    with pytest.raises(DialplanError) as info:
        TimeSpec.parse(spec)
    assert str(info.value) == message


PLAN = """
[incoming]
include => open,09:00-17:59,mon-fri,*,*
include => closed
exten => 2,1,GotoIfTime(09:00-17:59,mon-fri,*,*?day:night)
 same => n(day),Set(R=day)
 same => n,Hangup()
 same => n(night),Set(R=night ${IFTIME(*,sat&sun,*,*?weekend:weekday)})
[open]
exten => 1,1,Set(R=reception)
[closed]
exten => 1,1,Set(R=announcement)
"""


def test_timed_include_routes_by_business_hours():
    plan = parse(PLAN)
    assert simulate(plan, "incoming", "1", at=THU_9)[0].variables["R"] == "reception"
    assert simulate(plan, "incoming", "1", at=THU_18)[0].variables["R"] == "announcement"
    assert simulate(plan, "incoming", "1", at=SAT_10)[0].variables["R"] == "announcement"
    assert plan.search_order("incoming") == ["incoming", "open", "closed"]  # static view: all includes
    assert plan.search_order("incoming", THU_18) == ["incoming", "closed"]


def test_gotoiftime_and_iftime():
    plan = parse(PLAN)
    assert simulate(plan, "incoming", "2", at=THU_9)[0].variables["R"] == "day"
    assert simulate(plan, "incoming", "2", at=THU_18)[0].variables["R"] == "night weekday"
    assert simulate(plan, "incoming", "2", at=SAT_10)[0].variables["R"] == "night weekend"


def test_clock_advances_with_the_simulated_call():
    plan = parse("[c]\nexten => 1,1,Wait(120)\n same => n,Set(R=${IFTIME(17:59?before:after)})\n")
    assert simulate(plan, "c", "1", at=datetime(2026, 11, 26, 17, 58))[0].variables["R"] == "after"
    assert simulate(plan, "c", "1", at=datetime(2026, 11, 26, 17, 57, 30))[0].variables["R"] == "before"


def test_bad_time_specs_are_check_errors():
    report = check_text("[c]\ninclude => d,9-17,*,*,*\nexten => 1,1,GotoIfTime(*,noday,*,*?1)\n[d]\n")
    assert [str(e) for e in report.errors] == [
        "extensions.conf:2: include => d: time spec '9-17,*,*,*': '9' is not a time HH:MM",
        "extensions.conf:3: GotoIfTime(*,noday,*,*?1): time spec '*,noday,*,*': 'noday' is not a weekday (sun-sat)",
    ]


def test_lookups_read_the_clock_only_when_an_include_is_timed():
    """Reading the local time is a system call: a plan with no timed include never asks the
    clock for its lookups; one with a timed include asks it for every lookup."""
    reads = []

    def clock():
        reads.append(1)
        return THU_18

    untimed = parse("[c]\nexten => 1,1,Set(R=a)\n same => n,Set(S=b)\nexten => h,1,NoOp()\n")
    asyncio.run(run(untimed, SimulatedChannel(), "c", "1", clock=clock))
    assert not untimed.timed and reads == []
    timed = parse(PLAN)
    chan = SimulatedChannel()
    asyncio.run(run(timed, chan, "incoming", "1", clock=clock))
    assert timed.timed and len(reads) >= 2 and chan.variables["R"] == "announcement"


def test_find_remembers_untimed_lookups_bounded_and_forgets_them_on_invalidate(monkeypatch):
    from labkit.dialplan import model
    from labkit.dialplan.model import Priority

    plan = parse("[c]\nexten => _1XX,1,Set(R=pattern)\nexten => 105,1,Set(R=literal)\n")
    scans = []
    real = model.Dialplan.candidates
    monkeypatch.setattr(model.Dialplan, "candidates", lambda self, *a, **k: scans.append(a) or real(self, *a, **k))
    first = plan.find("c", "105", 1)
    assert plan.find("c", "105", 1) is first and first.priority.app == "Set" and len(scans) == 1
    assert plan.find("c", "105", 1, now=THU_18) is first and len(scans) == 1   # no timed include: same
    assert plan.find("c", "999", 1) is None and plan.find("c", "999", 1) is None and len(scans) == 2
    # a hand-made change, then invalidate(): looked up again
    first.extension.priorities[1] = Priority(1, "NoOp", "")
    plan.invalidate()
    assert plan.find("c", "105", 1).priority.app == "NoOp"
    monkeypatch.setattr(model, "MAX_REMEMBERED_LOOKUPS", 3)
    for n in range(10):
        plan.find("c", f"1{n:02d}", 1)
    assert len(plan._found) <= 3
    timed = parse(PLAN)
    timed.find("incoming", "1", 1, now=THU_9)
    assert timed._found == {}                          # time-dependent plans are never remembered
