"""`python -m labkit.pbx` refuses a bad config or dialplan at start, naming file and line."""
import subprocess
import sys


def run_pbx(*args, timeout=20):
    return subprocess.run([sys.executable, "-m", "labkit.pbx", *args], capture_output=True, text=True,
                          timeout=timeout)


def test_help():
    r = run_pbx("--help")
    assert r.returncode == 0 and "--bind" in r.stdout and "--port" in r.stdout and "--list" in r.stdout


def test_bad_toml_names_file_and_line(tmp_path):
    cfg = tmp_path / "pbx.toml"
    cfg.write_text("[server]\nport = 5060\n[endpoints.100]\npasword = 'x'\n")
    r = run_pbx("--config", str(cfg), "--data-dir", str(tmp_path))
    assert r.returncode == 2
    assert f"{cfg}:4: endpoints.100: unknown key 'pasword' (did you mean 'password'?)" in r.stderr


def test_bad_dialplan_names_file_and_line(tmp_path):
    plan = tmp_path / "extensions.conf"
    plan.write_text("[internal]\nexten => 100,1,Answer()\n same => n,Dail(PJSIP/100)\n")
    cfg = tmp_path / "pbx.toml"
    cfg.write_text(f"[dialplan]\nfile = '{plan.name}'\n[endpoints.100]\npassword = 'x'\ncontext = 'internal'\n")
    r = run_pbx("--config", str(cfg), "--data-dir", str(tmp_path))
    assert r.returncode == 2
    assert "extensions.conf:3" in r.stderr and "Dail" in r.stderr


def test_endpoint_in_a_context_the_dialplan_lacks(tmp_path):
    plan = tmp_path / "extensions.conf"
    plan.write_text("[internal]\nexten => 100,1,Answer()\n")
    cfg = tmp_path / "pbx.toml"
    cfg.write_text(f"[dialplan]\nfile = '{plan.name}'\n[endpoints.100]\npassword = 'x'\ncontext = 'sales'\n")
    r = run_pbx("--config", str(cfg), "--data-dir", str(tmp_path))
    assert r.returncode == 2
    assert f"{cfg}:5: endpoints.100: context [sales] is not in {plan}" in r.stderr


def test_garbage_is_frozen_on_a_timer_and_collected_in_a_full_pass(monkeypatch):
    """The PBX turns the allocation-driven GC off (calls leave no cycles); this task freezes
    what outlived each window (no walk, no stall) and, every few windows, unfreezes and runs
    a full pass that frees what cycles there are."""
    import asyncio
    import gc
    import weakref

    from labkit.pbx.__main__ import collect_garbage

    class Node:
        pass

    steps: list[str] = []
    alive_at_step: list[bool] = []
    real = {name: getattr(gc, name) for name in ("freeze", "unfreeze", "collect")}
    for name, fn in real.items():
        def spy(*args, _name=name, _fn=fn):
            steps.append(_name)
            result = _fn(*args)
            alive_at_step.append(ref() is not None)
            return result
        monkeypatch.setattr(gc, name, spy)

    was_enabled = gc.isenabled()
    gc.disable()
    try:
        node = Node()
        node.me = node                  # a cycle: only the cyclic GC can free it
        ref = weakref.ref(node)
        del node

        async def go():
            task = asyncio.create_task(collect_garbage(settle_every=0.001, full_every=3))
            for _ in range(1000):       # until five windows ended (a busy machine only slows it)
                if steps.count("freeze") >= 5:
                    break
                await asyncio.sleep(0.005)
            task.cancel()

        asyncio.run(go())
    finally:
        real["unfreeze"]()
        if was_enabled:
            gc.enable()
    assert steps[:7] == ["freeze", "freeze", "unfreeze", "collect", "freeze", "freeze", "freeze"]
    assert alive_at_step[:3] == [True, True, True]     # frozen, not walked: the cycle stays
    assert alive_at_step[3] is False                    # the full pass freed it
