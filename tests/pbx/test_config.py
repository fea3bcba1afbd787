"""Config validation: bad files give a message with file and line; the default loads."""
import pytest

from labkit.pbx.config import ConfigError, load, loads


def test_embedded_default_binds_loopback_with_demo_endpoints():
    cfg = load()
    assert cfg.bind == "127.0.0.1" and cfg.rtp_bind == "127.0.0.1"
    assert {"100", "101", "102"} <= set(cfg.endpoints)
    assert cfg.endpoints["100"].context == "internal"


def test_syntax_error_names_file_and_line():
    with pytest.raises(ConfigError, match=r"^pbx.toml:3: TOML syntax error"):
        loads("[server]\nport = 5060\nbind = \n", "pbx.toml")


def test_unknown_key_suggests_the_right_one_with_line():
    text = "[server]\nport = 5070\n\n[endpoints.200]\npasword = 'x'\n"
    with pytest.raises(ConfigError) as err:
        loads(text, "pbx.toml")
    assert str(err.value) == "pbx.toml:5: endpoints.200: unknown key 'pasword' (did you mean 'password'?)"


def test_wrong_type_and_missing_secret():
    with pytest.raises(ConfigError, match=r"pbx.toml:2: server.port: expected int, got str '5060'"):
        loads("[server]\nport = '5060'\n", "pbx.toml")
    with pytest.raises(ConfigError, match=r"pbx.toml:1: endpoints.7: needs a password"):
        loads("[endpoints.7]\ncontext = 'x'\n", "pbx.toml")


def test_bad_values():
    with pytest.raises(ConfigError, match="not an IP address"):
        loads("[server]\nbind = 'example'\n")
    with pytest.raises(ConfigError, match="ha1_md5: must be 32 hex digits"):
        loads("[endpoints.1]\nha1_md5 = 'abc'\n")
    with pytest.raises(ConfigError, match=r"unknown section \[sever\]"):
        loads("[sever]\nport = 1\n")


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load(tmp_path / "nope.toml")


def test_ban_ignore_validated_and_default_exempts_loopback():
    assert load().ban_ignore == ["127.0.0.1", "::1"]
    assert loads("[security]\nban_ignore = ['10.0.0.0/8']\n").ban_ignore == ["10.0.0.0/8"]
    with pytest.raises(ConfigError, match="ban_ignore: 'nope' is not an address"):
        loads("[security]\nban_ignore = ['nope']\n")
