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


def test_garbage_is_collected_on_a_timer_young_passes_then_a_full_one(monkeypatch):
    """The PBX turns the allocation-driven GC off (calls leave no cycles); this task still
    runs young passes and, less often, a full one."""
    import asyncio
    import gc

    from labkit.pbx.__main__ import collect_garbage

    passes = []
    monkeypatch.setattr(gc, "collect", lambda generation=2: passes.append(generation) or 0)

    async def go():
        task = asyncio.create_task(collect_garbage(young_every=0.001, full_every=3))
        for _ in range(1000):           # until seven passes ran (a busy machine only slows it)
            if len(passes) >= 7:
                break
            await asyncio.sleep(0.005)
        task.cancel()

    asyncio.run(go())
    assert passes[:7] == [1, 1, 2, 1, 1, 2, 1]
