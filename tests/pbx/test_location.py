"""The location service: bindings expire on time and survive a restart."""
from labkit.pbx.location import Binding, LocationService, format_bindings


def binding(contact, expires_at, cseq=1, q=None, call_id="c1"):
    return Binding(aor="sip:100@labkit", contact=contact, key=contact, expires_at=expires_at,
                   call_id=call_id, cseq=cseq, source="udp:127.0.0.1:5062", q=q, updated_at=expires_at - 60)


def test_bindings_survive_a_restart(tmp_path):
    db = tmp_path / "pbx.sqlite"
    loc = LocationService(db)
    loc.apply("sip:100@labkit", [binding("sip:100@127.0.0.1:5062", 1060.0)])
    loc.close()
    again = LocationService(db)
    [b] = again.lookup("sip:100@labkit", now=1000.0)
    assert (b.contact, b.expires_in(1000.0), b.source) == ("sip:100@127.0.0.1:5062", 60, "udp:127.0.0.1:5062")
    assert again.lookup("sip:100@labkit", now=1060.0) == []


def test_expire_removes_only_what_is_due_and_q_orders_lookup():
    loc = LocationService()
    loc.apply("sip:100@labkit", [binding("sip:a@h", 100.0, q=0.5), binding("sip:b@h", 200.0, q=1.0),
                                 binding("sip:c@h", 300.0)])
    assert [b.contact for b in loc.lookup("sip:100@labkit", now=50)] == ["sip:c@h", "sip:b@h", "sip:a@h"]  # no q means 1.0; ties: most recent first
    gone = loc.expire(now=150.0)
    assert [b.contact for b in gone] == ["sip:a@h"]
    assert loc.next_expiry() == 200.0
    assert "sip:100@labkit -> sip:b@h  expires in 50 s" in format_bindings(loc.all(now=150.0), 150.0)


def test_apply_is_atomic():
    loc = LocationService()
    loc.apply("sip:100@labkit", [binding("sip:a@h", 100.0)])
    bad = binding("sip:b@h", 100.0)
    bad.cseq = None  # NOT NULL constraint fails inside the transaction
    try:
        loc.apply("sip:100@labkit", [binding("sip:c@h", 100.0), bad], remove_all=True)
    except Exception:
        pass
    else:
        raise AssertionError("the broken upsert should have failed")
    assert [b.contact for b in loc.lookup("sip:100@labkit", now=0)] == ["sip:a@h"]


def test_lookup_reads_through_a_cache_that_every_write_and_expiry_refreshes():
    loc = LocationService()
    statements = []
    loc._db.set_trace_callback(statements.append)
    loc.apply("sip:100@labkit", [binding("sip:a@h", 100.0)])
    assert [b.contact for b in loc.lookup("sip:100@labkit", now=50)] == ["sip:a@h"]
    reads = len(statements)
    for now in (51, 60, 99.9):     # every call looks its callee up: no SQL after the first
        assert [b.contact for b in loc.lookup("sip:100@labkit", now=now)] == ["sip:a@h"]
    assert len(statements) == reads
    assert loc.lookup("sip:100@labkit", now=100.0) == []          # expiry still counts, cached or not
    loc.apply("sip:100@labkit", [binding("sip:b@h", 200.0, q=1.0)])   # a REGISTER is seen at once
    assert [b.contact for b in loc.lookup("sip:100@labkit", now=50)] == ["sip:b@h", "sip:a@h"]
    loc.apply("sip:100@labkit", removals=["sip:b@h"])
    assert [b.contact for b in loc.lookup("sip:100@labkit", now=50)] == ["sip:a@h"]
    assert [b.contact for b in loc.expire(now=150.0)] == ["sip:a@h"]
    assert loc.lookup("sip:100@labkit", now=50) == []             # expired rows are gone from the cache too
