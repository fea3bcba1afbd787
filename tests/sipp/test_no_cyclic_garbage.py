"""A finished call leaves nothing for the cyclic GC: refcounting frees every object of it.

The PBX runs in this process (labkit.lab.serve) and SIPp makes authenticated calls through it
(INVITE, 401, ACK, INVITE, 180, 200, ACK, BYE; the B2BUA's two dialogs, offer/answer on both
legs, the relay opened and closed). Then gc.collect() must find nothing: a full collection
walks the whole heap and stalls the loop for as long (bench_calls.py), so it should have no
reason to run often, and when it runs, nothing of a call may be waiting for it.
"""
import collections
import gc
import time
from pathlib import Path
from types import SimpleNamespace

from labkit.lab import serve
from labkit.pbx.config import loads
from labkit.pbx.server import PBX

from .conftest import free_port, sipp
from .test_calls import CONFIG, background_sipp, register_callee

BENCH_SCENARIOS = Path(__file__).resolve().parents[2] / "benchmarks" / "sipp"   # signalling only

CALLS = 5


def test_finished_calls_leave_no_cyclic_garbage(tmp_path):
    cfg = loads("[server]\nport = 0\n" + CONFIG)
    cfg.data_dir = tmp_path
    with serve(PBX(cfg)) as srv:
        host, port = srv.address
        callee_port = free_port()
        register_callee(SimpleNamespace(host=host, port=port), callee_port)
        thread, box = background_sipp(str(BENCH_SCENARIOS / "uas.xml"), (host, port), "-m", str(CALLS),
                                      local_port=callee_port, timeout=30)
        gc.collect()
        gc.set_debug(gc.DEBUG_SAVEALL)   # keep what a collection finds, to name it
        try:
            r = sipp(str(BENCH_SCENARIOS / "uac_auth.xml"), (host, port), "-s", "100", "-key", "callee", "101",
                     "-au", "100", "-ap", "secret100", "-auth_uri", f"101@{host}:{port}", "-d", "200",
                     "-r", "5", "-mp", str(free_port()), calls=CALLS, timeout=30)
            thread.join(35)
            assert r.returncode == 0, r.stdout[-3000:]
            assert box["result"].returncode == 0, box["result"].stdout[-3000:]
            calls = srv.server.calls
            for _ in range(100):   # the last BYE's teardown
                if not srv.call(lambda: calls.active or calls.tasks or calls.media.ports.in_use):
                    break
                time.sleep(0.05)
            found = gc.collect()
            kinds = collections.Counter(f"{type(o).__module__}.{type(o).__qualname__}" for o in gc.garbage)
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
    assert found == 0, kinds.most_common(20)
