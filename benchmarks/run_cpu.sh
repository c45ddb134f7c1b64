#!/usr/bin/env bash
# The CPU results committed in benchmarks/results/ (about 10 minutes on an idle 2-core machine,
# longer on a shared one). Extra arguments go to the commands' --note, e.g.
#   bash benchmarks/run_cpu.sh "machine shared with other jobs during the run"
# OpenMP's default wait policy is kept: on an idle machine it is the fastest (OMP_WAIT_POLICY=PASSIVE
# costs op-heavy networks up to 2×, docs/speed.md); on a shared machine PASSIVE gives steadier timings.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
NOTE=${1:-}
"$PY" benchmarks/speed_goals.py --out benchmarks/results/cpu-goals --note "$NOTE"
"$PY" benchmarks/light_variants.py --out benchmarks/results/cpu-light-variants
"$PY" -m irstd.cli.main bench --kind learned --sizes 256 --batch-sizes 1 --runs 30 --budget 15 \
    --out benchmarks/results --name cpu-table1 --note "$NOTE"
