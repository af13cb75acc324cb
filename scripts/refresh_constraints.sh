#!/usr/bin/env bash
# Rebuilds constraints.txt: resolves pyproject.toml's ranges afresh in a new virtual environment,
# runs the tests there, and only if they pass writes the versions they passed with.
#   bash scripts/refresh_constraints.sh          # then review `git diff constraints.txt`
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.constraints-venv
python3 -m venv --clear "$venv"
# shellcheck disable=SC1091
. "$venv/bin/activate"
python3 -m pip install --quiet --upgrade pip
python3 -m pip install --quiet '.[test]'
python3 -m pytest
{
  echo "# The versions the tests pass with (Python 3.11 and 3.12, CPU), used by .ci/run and the README's"
  echo "# commands: pip install -c constraints.txt ... . pyproject.toml keeps the ranges. Refresh: see"
  echo "# 'Pinned installs' in README.md (scripts/refresh_constraints.sh)."
  python3 -m pip freeze --exclude hjepa --exclude pip --exclude setuptools --exclude wheel \
    | grep -v '^-e' | grep -v '^#'
} > constraints.txt.tmp
mv constraints.txt.tmp constraints.txt
echo "constraints.txt refreshed from $(python3 --version); review it with: git diff constraints.txt"
