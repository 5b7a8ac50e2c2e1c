#!/usr/bin/env bash
# Screenshots of the MLflow UI over a finished sweep, taken in a real headless browser: the
# experiment's run table, the registered model's page, and the page and metric charts of
# the trial that the champion came from (docs/figures/mlflow/ keeps them).
#
#   infra/local/mlflow-ui-screenshots.sh STORE_DIR EXPERIMENT MODEL_NAME OUT_DIR
#
# STORE_DIR holds mlflow.db and mlartifacts/ (e.g. a `madn demo --out STORE_DIR` folder).
# Needs chromium (Debian: apt-get install chromium). Starts `mlflow ui` on a free loopback port
# for the screenshots and stops it again on every exit path.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
PYTHON_BIN=${PYTHON_BIN:-$root/.venv/bin/python}

if [[ $# -ne 4 ]]; then
    echo "usage: $0 STORE_DIR EXPERIMENT MODEL_NAME OUT_DIR" >&2
    exit 2
fi
store=$(cd "$1" && pwd) experiment=$2 model=$3 out=$4
[[ -f $store/mlflow.db ]] || { echo "$0: $store/mlflow.db does not exist: expected a madn demo folder" >&2; exit 2; }
browser=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
[[ -n $browser ]] || { echo "$0: no chromium on PATH: install it (apt-get install chromium)" >&2; exit 2; }
mkdir -p "$out"

port=$("$PYTHON_BIN" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log=$(mktemp)
# its own process group, so that the server and its uvicorn workers stop together
(cd "$store" && exec setsid "$PYTHON_BIN" -m mlflow ui --backend-store-uri "sqlite:///$store/mlflow.db" \
    --host 127.0.0.1 --port "$port" >"$log" 2>&1) &
server=$!
trap 'kill -TERM -- "-$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 120); do
    curl -fsS "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
    kill -0 "$server" 2>/dev/null || { cat "$log" >&2; exit 1; }
    sleep 0.5
done

experiment_id=$(MLFLOW_TRACKING_URI="sqlite:///$store/mlflow.db" "$PYTHON_BIN" -c \
    'import sys, mlflow; e = mlflow.get_experiment_by_name(sys.argv[1]); print(e.experiment_id if e else "")' "$experiment")
[[ -n $experiment_id ]] || { echo "$0: no experiment $experiment in $store/mlflow.db" >&2; exit 2; }

shoot() {  # shoot URL_FRAGMENT FILE: render the single-page app for 20 s of virtual time
    "$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1700,1000 \
        --virtual-time-budget=20000 --screenshot="$out/$2" "http://127.0.0.1:$port/#/$1" \
        >/dev/null 2>&1
    echo "$out/$2"
}
trials="searchFilter=tags.%60madn.role%60%20%3D%20%27trial%27"  # tags.`madn.role` = 'trial'
shoot "experiments/$experiment_id/runs?$trials" runs.png
shoot "models/$model" model.png
champion_run=$(MLFLOW_TRACKING_URI="sqlite:///$store/mlflow.db" "$PYTHON_BIN" -c '
import sys
from mlflow import MlflowClient
client = MlflowClient()
try:
    print(client.get_model_version_by_alias(sys.argv[1], "champion").tags["source_run_id"])
except Exception:
    print("")' "$model")
if [[ -n $champion_run ]]; then
    shoot "experiments/$experiment_id/runs/$champion_run" champion_trial.png
    shoot "experiments/$experiment_id/runs/$champion_run/model-metrics" champion_trial_metrics.png
fi
