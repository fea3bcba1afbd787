"""The project's own promises: README's two commands, pyproject and environment.yml agreeing."""
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def requirement_names(reqs):
    return {re.split(r"[<>=!~;\[ ]", r.strip(), maxsplit=1)[0].lower().replace("_", "-") for r in reqs}


def pyproject_packages():
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    names = requirement_names(data["project"]["dependencies"])
    for extra in data["project"]["optional-dependencies"].values():
        names |= requirement_names(extra)
    return names


def environment_packages():
    names = set()
    in_dependencies = False
    for line in (ROOT / "environment.yml").read_text().splitlines():
        if re.match(r"^\S", line):
            in_dependencies = line.startswith("dependencies:")
            continue
        if not in_dependencies:
            continue
        m = re.match(r"^\s*-\s+([A-Za-z0-9_.\-]+)\s*(?:[<>=!~].*)?$", line)
        if m and m.group(1) not in {"pip", "python"}:
            names.add(m.group(1).lower().replace("_", "-"))
    return names


def test_environment_yml_and_pyproject_list_the_same_packages():
    assert pyproject_packages() == environment_packages()


def test_readme_holds_the_two_commands_and_ci_calls_the_test_one():
    readme = (ROOT / "README.md").read_text()
    assert "make pbx" in readme and "make test" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    makefile = (ROOT / "Makefile").read_text()
    assert "-m labkit.pbx" in makefile and "-m pytest" in makefile
