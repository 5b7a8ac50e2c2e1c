#!/usr/bin/env bash
# Stop exactly the MLflow server that start-mlflow-server.sh started (its process group).
set -uo pipefail
source "$(dirname "$0")/common.sh"
stop_daemon mlflow-server
rm -f "$MADN_INFRA_STATE/mlflow.url"
