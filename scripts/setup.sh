#!/usr/bin/env bash
# Create .venv (once) and install the project into it. Re-running is cheap: it reinstalls only
# when pyproject.toml or constraints.txt changed. Set IRSTD_VENV to use another folder.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${IRSTD_VENV:-.venv}"
py="${PYTHON:-python3}"
if [ ! -x "$venv/bin/python" ]; then
  echo "creating $venv" >&2
  "$py" -m venv "$venv"
fi
stamp="$venv/.irstd-installed"
want="$(cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "installing sgem-irstd into $venv (torch from constraints.txt first)" >&2
  # torch first, pinned: a bare 'pip install torch' would pull the CUDA build
  "$venv/bin/python" -m pip install -q -c constraints.txt torch
  "$venv/bin/python" -m pip install -q -c constraints.txt -e ".[test,export,plot,serve,video,track]"
  echo "$want" > "$stamp"
fi
