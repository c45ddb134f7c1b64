#!/usr/bin/env bash
# The CPU results committed in benchmarks/results/ (about 5 minutes on an idle 2-core machine,
# longer on a shared one). Extra arguments go to both commands' --note, e.g.
#   bash benchmarks/run_cpu.sh "machine shared with other jobs during the run"
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
# PyTorch's OpenMP threads wait passively: much steadier timings when other processes share the cores
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
NOTE=${1:-}
"$PY" benchmarks/speed_goals.py --out benchmarks/results/cpu-goals --note "$NOTE"
"$PY" -m irstd.cli.main bench --kind learned --sizes 256 --batch-sizes 1 --runs 30 --budget 15 \
    --out benchmarks/results --name cpu-table1 --note "$NOTE"
