#!/usr/bin/env bash
# Start an MLflow tracking server (and registry) for a team or a cluster on this machine.
#
#   infra/local/start-mlflow-server.sh [--host 127.0.0.1] [--port P]
#       [--backend-store-uri sqlite:///PATH | postgresql://user:pw@host/db]
#       [--artifacts-destination DIR_OR_URI]
# Binds to loopback unless --host is given explicitly. With --serve-artifacts, clients upload
# and download artifacts through the server and never need direct storage access. Prints the
# tracking URL (also written to $MADN_INFRA_STATE/mlflow.url) and waits until /health answers.
set -euo pipefail
source "$(dirname "$0")/common.sh"

host=127.0.0.1 port="" backend="" artifacts=""
while [[ $# -gt 0 ]]; do
    case $1 in
        --host) host=$2; shift 2 ;;
        --port) port=$2; shift 2 ;;
        --backend-store-uri) backend=$2; shift 2 ;;
        --artifacts-destination) artifacts=$2; shift 2 ;;
        *) echo "start-mlflow-server.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
port=${port:-$(free_port)}
backend=${backend:-sqlite:///$MADN_INFRA_STATE/mlflow-server.db}
artifacts=${artifacts:-$MADN_INFRA_STATE/mlflow-artifacts}
MLFLOW=${MLFLOW:-mlflow}
# MLflow 3's server also starts a job runner and five Huey consumer processes for its GenAI jobs
# (LLM judges, prompt optimisation), which madn never submits: off unless asked for.
export MLFLOW_SERVER_ENABLE_JOB_EXECUTION=${MLFLOW_SERVER_ENABLE_JOB_EXECUTION:-false}
if [[ -f "$MADN_INFRA_STATE/mlflow-server.pid" ]] && kill -0 "$(cat "$MADN_INFRA_STATE/mlflow-server.pid")" 2>/dev/null; then
    echo "start-mlflow-server.sh: a server started from $MADN_INFRA_STATE is running; stop it first" >&2
    exit 1
fi
start_daemon mlflow-server "$MADN_INFRA_STATE/mlflow-server.log" "$MLFLOW" server \
    --host "$host" --port "$port" --backend-store-uri "$backend" \
    --artifacts-destination "$artifacts" --serve-artifacts --workers 1
url="http://$host:$port"
health() { "$PYTHON_BIN" -c "import urllib.request, sys; sys.exit(urllib.request.urlopen('$url/health', timeout=2).status != 200)"; }
if ! wait_for health; then
    echo "start-mlflow-server.sh: no answer from $url; see $MADN_INFRA_STATE/mlflow-server.log" >&2
    exit 1
fi
echo "$url" > "$MADN_INFRA_STATE/mlflow.url"
echo "mlflow tracking server: $url (backend $backend, artifacts $artifacts)"
