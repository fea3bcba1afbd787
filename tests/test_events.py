"""The event bus: prefix subscriptions, and nothing built when nobody listens to a kind."""
from labkit.events import EventBus, EventRecorder


def test_prefix_subscribers_get_matching_events_only_and_unsubscribe_works():
    bus = EventBus(clock=lambda: 12.5)
    sip, calls = [], []
    stop_sip = bus.subscribe(sip.append, "sip.")
    bus.subscribe(calls.append, "call.")
    event = bus.publish("sip.in", message="INVITE")
    assert event is not None and event.kind == "sip.in" and event.time == 12.5 and event["message"] == "INVITE"
    bus.publish("call.new", channel="PJSIP/100-1")
    assert [e.kind for e in sip] == ["sip.in"] and [e.kind for e in calls] == ["call.new"]
    assert bus.wants("sip.out") and bus.wants("call.hangup") and not bus.wants("media.latched")
    stop_sip()
    assert not bus.wants("sip.out")          # the cache follows unsubscribing
    assert bus.publish("sip.out", message="200") is None and len(sip) == 1
    with EventRecorder(bus, "sip.") as rec:  # ...and subscribing
        assert bus.wants("sip.out")
        bus.publish("sip.out", message="BYE")
    assert [e["message"] for e in rec.events] == ["BYE"] and not bus.wants("sip.out")


def test_no_event_is_built_when_no_subscriber_wants_the_kind():
    ticks = []
    bus = EventBus(clock=lambda: ticks.append(1) or 0.0)
    bus.subscribe(lambda e: None, "registrar.bound")
    assert bus.publish("sip.in", message="x") is None and ticks == []   # no clock read, no Event
    assert bus.publish("registrar.bound", aor="100") is not None and ticks == [1]


def test_a_failing_subscriber_does_not_stop_the_others():
    bus = EventBus()
    got = []
    bus.subscribe(lambda e: 1 / 0, "x")
    bus.subscribe(got.append, "x")
    bus.publish("x.y")
    assert len(got) == 1
