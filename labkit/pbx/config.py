"""The PBX configuration: one TOML file, validated at start with file-and-line errors.

Introduced in notebook 02 (grows with each notebook). The embedded default (`default.toml`
beside this module) binds loopback and has demo extensions, so `python -m labkit.pbx` is
useful with no file. Errors name the file and, where TOML lets us, the line:
`pbx.toml:12: endpoints.100: unknown key 'pasword' (did you mean 'password'?)`.
"""
from __future__ import annotations

import difflib
import ipaddress
import re
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

DEFAULT_NAME = "<embedded default.toml>"


class ConfigError(ValueError):
    """A configuration problem, with the file and line it comes from."""


@dataclass
class Endpoint:
    """A user that may register and call: extension number, credentials, dialplan context."""

    name: str
    password: str | None = None
    ha1_md5: str | None = None
    ha1_sha256: str | None = None
    context: str = "default"
    callerid: str | None = None
    mailbox: str | None = None
    max_contacts: int = 5


@dataclass
class Config:
    source: str = DEFAULT_NAME
    bind: str = "127.0.0.1"
    port: int = 5060
    transports: list[str] = field(default_factory=lambda: ["udp", "tcp"])
    realm: str = "labkit"
    user_agent: str = "labkit PBX"
    data_dir: Path = Path("~/.local/share/labkit")
    min_expires: int = 60
    max_expires: int = 3600
    default_expires: int = 600
    max_failures: int = 10
    window: float = 60.0
    ban_seconds: float = 600.0
    nonce_lifetime: float = 300.0
    digest_algorithms: list[str] = field(default_factory=lambda: ["SHA-256", "MD5"])
    ban_ignore: list[str] = field(default_factory=list)   # addresses never banned (fail2ban's ignoreip)
    rtp_bind: str = "127.0.0.1"
    rtp_port_min: int = 10000
    rtp_port_max: int = 20000
    endpoints: dict[str, Endpoint] = field(default_factory=dict)
    dialplan: Path | None = None          # extensions.conf; None = the embedded sample
    plan: Any = None                      # the loaded, checked dialplan (see load_plan)
    raw: dict[str, Any] = field(default_factory=dict)
    raw_text: str = ""


_SCHEMA: dict[str, dict[str, type | tuple[type, ...]]] = {
    "server": {"bind": str, "port": int, "transports": list, "realm": str, "user_agent": str, "data_dir": str},
    "registrar": {"min_expires": int, "max_expires": int, "default_expires": int},
    "security": {"max_failures": int, "window": (int, float), "ban_seconds": (int, float), "nonce_lifetime": (int, float),
                 "digest_algorithms": list, "ban_ignore": list},
    "rtp": {"bind": str, "port_min": int, "port_max": int},
    "dialplan": {"file": str},
}
_ENDPOINT_KEYS: dict[str, type | tuple[type, ...]] = {
    "password": str, "ha1_md5": str, "ha1_sha256": str, "context": str, "callerid": str,
    "mailbox": str, "max_contacts": int,
}


def _line_of(text: str, section: str, key: str | None = None) -> int | None:
    """Best effort: the line where `[section]` (or `key` inside it) is written."""
    lines = text.splitlines()
    header = re.compile(r"^\s*\[\s*" + re.escape(section).replace(r"\.", r"\s*\.\s*") + r"\s*\]")
    for i, line in enumerate(lines, 1):
        if header.match(line):
            if key is None:
                return i
            for j in range(i, len(lines)):
                if re.match(r"^\s*\[", lines[j]):
                    break
                if re.match(r"^\s*" + re.escape(key) + r"\s*=", lines[j]):
                    return j + 1
            return i
    return None


def load(path: str | Path | None = None) -> Config:
    """Read and validate a config file (the embedded default when `path` is None)."""
    if path is None:
        text = resources.files("labkit.pbx").joinpath("default.toml").read_text()
        source = DEFAULT_NAME
    else:
        source = str(path)
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise ConfigError(f"{source}: cannot read: {exc.strerror or exc}") from None
    return loads(text, source)


def loads(text: str, source: str = "<string>") -> Config:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
        where = f"{source}:{m.group(1)}" if m else source
        msg = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
        raise ConfigError(f"{where}: TOML syntax error: {msg}") from None

    def fail(message: str, section: str, key: str | None = None) -> ConfigError:
        line = _line_of(text, section, key)
        return ConfigError(f"{source}:{line}: {message}" if line else f"{source}: {message}")

    cfg = Config(source=source, raw=data, raw_text=text)
    for section, value in data.items():
        if section == "endpoints":
            continue
        if section not in _SCHEMA:
            known = ", ".join(sorted([*_SCHEMA, "endpoints"]))
            raise fail(f"unknown section [{section}] (known: {known})", section)
        _check_keys(value, _SCHEMA[section], section, fail)

    server = data.get("server", {})
    cfg.bind = server.get("bind", cfg.bind)
    try:
        ipaddress.ip_address(cfg.bind)
    except ValueError:
        raise fail(f"server.bind: {cfg.bind!r} is not an IP address", "server", "bind") from None
    cfg.port = server.get("port", cfg.port)
    if not 0 <= cfg.port <= 65535:
        raise fail(f"server.port: {cfg.port} is out of range 0-65535", "server", "port")
    cfg.transports = [t.lower() for t in server.get("transports", cfg.transports)]
    for t in cfg.transports:
        if t not in ("udp", "tcp"):
            raise fail(f"server.transports: unsupported transport {t!r} (supported: udp, tcp)", "server", "transports")
    cfg.realm = server.get("realm", cfg.realm)
    cfg.user_agent = server.get("user_agent", cfg.user_agent)
    cfg.data_dir = Path(server.get("data_dir", str(cfg.data_dir))).expanduser()

    reg = data.get("registrar", {})
    cfg.min_expires = reg.get("min_expires", cfg.min_expires)
    cfg.max_expires = reg.get("max_expires", cfg.max_expires)
    cfg.default_expires = reg.get("default_expires", cfg.default_expires)
    if not 0 < cfg.min_expires <= cfg.default_expires <= cfg.max_expires:
        raise fail("registrar: need 0 < min_expires <= default_expires <= max_expires", "registrar")

    sec = data.get("security", {})
    cfg.max_failures = sec.get("max_failures", cfg.max_failures)
    cfg.window = float(sec.get("window", cfg.window))
    cfg.ban_seconds = float(sec.get("ban_seconds", cfg.ban_seconds))
    cfg.nonce_lifetime = float(sec.get("nonce_lifetime", cfg.nonce_lifetime))
    cfg.digest_algorithms = sec.get("digest_algorithms", cfg.digest_algorithms)
    for algorithm in cfg.digest_algorithms:
        if algorithm not in ("SHA-256", "MD5", "SHA-256-sess", "MD5-sess"):
            raise fail(f"security.digest_algorithms: unknown algorithm {algorithm!r} "
                       "(known: SHA-256, MD5, SHA-256-sess, MD5-sess)", "security", "digest_algorithms")
    cfg.ban_ignore = sec.get("ban_ignore", cfg.ban_ignore)
    for address in cfg.ban_ignore:
        try:
            ipaddress.ip_network(address, strict=False)
        except ValueError:
            raise fail(f"security.ban_ignore: {address!r} is not an address or network", "security",
                       "ban_ignore") from None
    if not cfg.digest_algorithms:
        raise fail("security.digest_algorithms: offer at least one", "security", "digest_algorithms")

    rtp = data.get("rtp", {})
    cfg.rtp_bind = rtp.get("bind", cfg.rtp_bind)
    cfg.rtp_port_min = rtp.get("port_min", cfg.rtp_port_min)
    cfg.rtp_port_max = rtp.get("port_max", cfg.rtp_port_max)
    if not 1024 <= cfg.rtp_port_min < cfg.rtp_port_max <= 65535:
        raise fail("rtp: need 1024 <= port_min < port_max <= 65535", "rtp")

    dialplan = data.get("dialplan", {})
    if "file" in dialplan:
        base = Path(source).parent if source not in (DEFAULT_NAME, "<string>") else Path(".")
        cfg.dialplan = (base / Path(dialplan["file"]).expanduser()).resolve()

    endpoints = data.get("endpoints", {})
    if not isinstance(endpoints, dict):
        raise fail("endpoints must be a table of [endpoints.NAME] sections", "endpoints")
    for name, spec in endpoints.items():
        section = f"endpoints.{name}"
        if not isinstance(spec, dict):
            raise fail(f"{section} must be a table", section)
        _check_keys(spec, _ENDPOINT_KEYS, section, fail)
        if not (spec.get("password") or spec.get("ha1_md5") or spec.get("ha1_sha256")):
            raise fail(f"{section}: needs a password (or ha1_md5 / ha1_sha256)", section)
        for key in ("ha1_md5", "ha1_sha256"):
            if key in spec:
                want = 32 if key == "ha1_md5" else 64
                if not re.fullmatch(rf"[0-9a-fA-F]{{{want}}}", spec[key]):
                    raise fail(f"{section}.{key}: must be {want} hex digits", section, key)
        cfg.endpoints[str(name)] = Endpoint(name=str(name), **spec)
    return cfg


def _check_keys(table: Any, schema: dict, section: str, fail) -> None:
    if not isinstance(table, dict):
        raise fail(f"[{section}] must be a table", section)
    for key, value in table.items():
        if key not in schema:
            hint = difflib.get_close_matches(key, list(schema), n=1)
            extra = f" (did you mean {hint[0]!r}?)" if hint else f" (known: {', '.join(schema)})"
            raise fail(f"{section}: unknown key {key!r}{extra}", section, key)
        want = schema[key]
        if isinstance(value, bool) or not isinstance(value, want):
            names = " or ".join(t.__name__ for t in (want if isinstance(want, tuple) else (want,)))
            raise fail(f"{section}.{key}: expected {names}, got {type(value).__name__} {value!r}", section, key)


def load_plan(cfg: Config):
    """Read and check the dialplan, and that every endpoint's context exists in it.

    Errors come back as one ConfigError listing each problem as `file:line: message`.
    """
    from ..dialplan import DEFAULT_DIALPLAN, check

    path = cfg.dialplan or DEFAULT_DIALPLAN
    report = check(path)
    problems = [str(e) for e in report.errors]
    if report.plan is not None:
        for name, ep in cfg.endpoints.items():
            if ep.context not in report.plan.contexts:
                line = _line_of(cfg.raw_text, f"endpoints.{name}", "context") if cfg.raw_text else None
                where = f"{cfg.source}:{line}" if line else cfg.source
                problems.append(f"{where}: endpoints.{name}: context [{ep.context}] is not in {path}")
    if problems:
        raise ConfigError("\n".join(problems))
    cfg.plan = report.plan
    return report.plan
