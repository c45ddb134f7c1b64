#!/usr/bin/env bash
# The README's main job on the embedded default (no downloads, no user data).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/irstd demo "$@"
