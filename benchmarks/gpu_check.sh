#!/usr/bin/env bash
# GPU readiness check, one script, under 8 minutes: the CUDA tests (pytest -m gpu) and a short GPU benchmark
# (Hawkes likelihood fit on 1e6 events, a TPP epoch and a ConvSCCS fit, each with AMP / reduced precision off and
# on), printed as one markdown table (also saved to benchmarks/results/gpu_check.md on a GPU run).
#
#   bash benchmarks/gpu_check.sh                 # on a machine with a CUDA device
#   bash benchmarks/gpu_check.sh --device cpu    # dry run of the same code paths on CPU, tiny sizes (~1 minute)
#
# Every stage runs under its own timeout, so a hung stage costs its budget, not the whole check; a failed stage is
# reported in the table and the script goes on. Exit status: 0 when every stage passed.
set -uo pipefail

DEVICE="cuda"
if [[ "${1:-}" == "--device" && -n "${2:-}" ]]; then DEVICE="$2"; fi
cd "$(dirname "$0")/.." || exit 2
PY="${PYTHON:-python}"
START=$(date +%s)
STATUS=0
OUT_DIR="$(mktemp -d)"
trap 'rm -rf "$OUT_DIR"' EXIT

echo "# GPU check ($(date -u +%Y-%m-%dT%H:%M:%SZ), device=$DEVICE)"
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
fi
"$PY" -c "import torch; print('torch', torch.__version__, '| CUDA build', torch.version.cuda, '| devices', \
torch.cuda.device_count())"

# 1. CUDA tests (a dry run only lists them: without a device they are skipped anyway)
if [[ "$DEVICE" == "cpu" ]]; then
  timeout 120 "$PY" -m pytest -m gpu --collect-only -q -p no:cacheprovider 2>&1 | tail -3
  TESTS="collected only (dry run)"
else
  timeout 240 "$PY" -m pytest -m gpu -q -p no:cacheprovider -x --timeout 200 2>&1 | tee "$OUT_DIR/pytest.log" | tail -15
  rc=${PIPESTATUS[0]}
  TESTS="$(grep -E '[0-9]+ (passed|failed)' "$OUT_DIR/pytest.log" | tail -1) (exit $rc)"
  [[ $rc -ne 0 ]] && STATUS=1
fi

# 2. benchmark: one python process, one row per workload and precision
timeout 300 "$PY" - "$DEVICE" "$OUT_DIR/table.md" <<'PYEOF'
import sys
import time
import warnings

import numpy as np
import torch

from pathways.models.hawkes import HawkesExpKernel
from pathways.models.sccs import ConvSCCS
from pathways.models.tpp import RMTPP
from pathways.synthetic import simulate_hawkes
from pathways.synthetic.sccs import simulate_sccs
from pathways.training import Trainer

device, out = sys.argv[1], sys.argv[2]
gpu = device != "cpu"
sizes = {"hawkes_patients": 5500 if gpu else 60, "tpp_sequences": 4000 if gpu else 40,
         "sccs_cases": 20000 if gpu else 200}
rows = []


def sync():
    if gpu:
        torch.cuda.synchronize()


def timed(name, precision, size, unit, fn):
    try:
        if gpu:
            torch.cuda.reset_peak_memory_stats()
        fn()  # warm-up (CUDA context, kernels) on a small call is part of fn's first run: time a second run
        sync()
        t0 = time.perf_counter()
        note = fn()
        sync()
        seconds = time.perf_counter() - t0
        peak = torch.cuda.max_memory_allocated() / 2**30 if gpu else float("nan")
        rows.append(f"| {name} | {precision} | {size:,} {unit} | {seconds:.2f} | {size / seconds:,.0f} | "
                    f"{peak:.2f} | {note} |")
    except Exception as exc:  # a failed workload is a row of the table, not the end of the check
        rows.append(f"| {name} | {precision} | {size:,} {unit} | failed | | | {type(exc).__name__}: "
                    f"{str(exc)[:120]} |")
    print(rows[-1], flush=True)


# Hawkes: 5 codes, ~182 events per patient-year, 5500 patients ~ 1e6 events
mu, adj = np.full(5, 0.05), np.full((5, 5), 0.1)
seqs = simulate_hawkes(mu, adj, end=365.0, n_sequences=sizes["hawkes_patients"], seed=0)
for method in ("likelihood", "least-squares"):
    def fit_hawkes(method=method):
        model = HawkesExpKernel(decay=1.0, fit_method=method, device=device, max_iter=200).fit(seqs)
        return f"{model.n_iter_} iterations, objective {model.objective_:.6f}"
    timed(f"HawkesExpKernel {method}", "float64", seqs.n_events, "events", fit_hawkes)

# TPP epoch: RMTPP, global batch 256, AMP off and on
tpp = simulate_hawkes(np.array([0.3, 0.2, 0.1]), np.array([[0.2, 0, 0.1], [0.3, 0.1, 0], [0, 0.2, 0.2]]),
                      end=100.0, n_sequences=sizes["tpp_sequences"], seed=1)
for precision in ("32", "16-mixed" if gpu else "bf16"):
    def epoch(precision=precision):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = RMTPP(hidden_size=64, batch_size=256, max_epochs=1, patience=None, device=device)
            model.fit(tpp, trainer=Trainer(device=device, precision=precision, progress=False, loggers=()))
        return f"train loss per event {model.history_[-1]['train_loss']:.4f}"
    timed("RMTPP epoch", precision, tpp.n_events, "events", epoch)

# ConvSCCS: penalised fit, float64 and float32
truth = np.stack([np.r_[0.0, np.full(5, 0.7), np.zeros(4)], np.zeros(10)])
sccs = simulate_sccs(sizes["sccs_cases"], 100, truth, exposure_prob=0.6, seed=2)
for dtype in ("float64", "float32"):
    def fit_sccs(dtype=dtype):
        model = ConvSCCS(n_lags=9, C_tv=1e4, C_group_l1=1e4, device=device, dtype=dtype).fit(sccs)
        return f"{model.n_iter_} iterations, largest log RI {np.abs(model.coef_).max():.3f}"
    timed("ConvSCCS fit", dtype, sccs.n_cases, "cases", fit_sccs)

header = ("| workload | precision | size | seconds | per second | peak GPU GiB | notes |\n"
          "|---|---|---|---|---|---|---|\n")
with open(out, "w") as fh:
    fh.write(header + "\n".join(rows) + "\n")
sys.exit(1 if any("| failed |" in r for r in rows) else 0)
PYEOF
rc=$?
[[ $rc -ne 0 ]] && STATUS=1

echo
echo "## GPU check: device=$DEVICE, CUDA tests: $TESTS, total $(( $(date +%s) - START )) s"
echo
if [[ -s "$OUT_DIR/table.md" ]]; then
  cat "$OUT_DIR/table.md"
  if [[ "$DEVICE" != "cpu" ]]; then
    { echo "# GPU check (benchmarks/gpu_check.sh, $(date -u +%Y-%m-%d))"; echo;
      echo "CUDA tests: $TESTS"; echo; cat "$OUT_DIR/table.md"; } > benchmarks/results/gpu_check.md
  fi
else
  echo "(benchmark produced no table: exit $rc, timeout or crash)"
fi
exit $STATUS
