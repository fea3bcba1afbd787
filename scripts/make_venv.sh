#!/usr/bin/env bash
# Create the project's venv and install labkit with its extras. Used by `make pbx` / `make test`.
set -euo pipefail
python=${1:-python3}; venv=${2:-.venv}; extras=${3:-lab,test,bench,fast}
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "labkit needs Python 3.11 or newer; '$python' is $("$python" --version 2>&1)." >&2
  exit 1
fi
if [ ! -x "$venv/bin/python" ]; then
  if ! "$python" -m venv "$venv" 2>/dev/null; then
    rm -rf "$venv"
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      echo "Installing python3-venv (Debian splits venv out of python3)..."
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
      "$python" -m venv "$venv"
    else
      echo "Cannot create a venv: install python3-venv (sudo apt-get install python3-venv)." >&2
      exit 1
    fi
  fi
fi
"$venv/bin/python" -m pip install -q --upgrade pip
"$venv/bin/python" -m pip install -q -e ".[${extras}]"
