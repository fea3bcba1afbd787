"""python -m labkit.dialplan check / show / route, as a user runs them."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]
SAMPLE = ROOT / "data" / "dialplan" / "extensions.conf"
DATA = Path(__file__).parent / "data"


def cli(*args):
    proc = subprocess.run([sys.executable, "-m", "labkit.dialplan", *map(str, args)], capture_output=True,
                          text=True, timeout=60, cwd=ROOT)
    return proc.returncode, proc.stdout, proc.stderr


def test_check_clean_and_broken():
    code, out, _ = cli("check", SAMPLE)
    assert code == 0
    assert out.strip().endswith("0 error(s), 0 warning(s); 3 contexts, 10 extensions, 39 priorities")
    code, out, _ = cli("check", DATA / "broken.conf")
    assert code == 1
    lines = out.splitlines()
    assert lines[0] == "broken.conf:2: 'exten' outside any [context]"
    assert "broken.conf:13: context [default] includes unknown context [missing] (warning)" in lines
    assert lines[-1].endswith("10 error(s), 1 warning(s); 1 contexts, 5 extensions, 3 priorities")


def test_check_missing_file():
    code, out, _ = cli("check", DATA / "absent.conf")
    assert code == 1 and "cannot read the dialplan" in out


def test_show():
    code, out, _ = cli("show", SAMPLE, "services")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "[ Context 'services' created by 'pbx_config' ]"
    assert lines[1] == "  '600' =>          1. Answer()                                   [extensions.conf:57]"
    assert lines[-1] == "-= 3 extensions (22 priorities) in 1 context. =-"
    code, out, _ = cli("show", SAMPLE)
    assert "  Include =>        'services'                                    [pbx_config]" in out
    assert "  '100' =>          hint: PJSIP/100" in out
    code, _, err = cli("show", SAMPLE, "nosuch")
    assert code == 1 and "there is no context [nosuch]" in err


def test_route_dry_run():
    code, out, _ = cli("route", SAMPLE, "internal", "101", "--callerid", "102", "--dial", "PJSIP/101=BUSY")
    assert code == 0
    assert "  2. '_1XX' in [internal]  (extensions.conf:33)   <- starts here" in out
    assert '-- Executing [101@internal:8] Busy("SIM/102-' in out
    assert out.splitlines()[-2].startswith("Call ended by hangup after 6 steps")
    code, out, _ = cli("route", SAMPLE, "default", "101")
    assert code == 1 and "no extension matches '101'" in out


def test_route_bad_arguments():
    code, _, err = cli("route", SAMPLE, "internal", "101", "--dial", "MAYBE")
    assert code != 0 and "status must be one of" in err
    code, _, err = cli("route", DATA / "broken.conf", "default", "1")
    assert code == 1 and "broken.conf:2:" in err


def test_route_at_a_given_time():
    code, out, _ = cli("route", DATA / "hours.conf", "incoming", "1", "--at", "2026-11-26 10:00")
    assert code == 0 and "contexts searched at Thu 2026-11-26 10:00: incoming -> open -> closed" in out
    assert 'Dial("SIM/100-' in out
    code, out, _ = cli("route", DATA / "hours.conf", "incoming", "1", "--at", "2026-11-26 20:00")
    assert code == 0 and "contexts searched at Thu 2026-11-26 20:00: incoming -> closed" in out
    assert 'Playback("SIM/100-' in out and "office-closed" in out
    code, _, err = cli("route", DATA / "hours.conf", "incoming", "1", "--at", "tonight")
    assert code == 2 and "'tonight' is not a date and time like '2026-11-26 20:00'" in err
