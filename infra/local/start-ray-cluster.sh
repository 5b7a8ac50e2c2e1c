#!/usr/bin/env bash
# Start a local multi-node Ray cluster on this machine: a head and N worker nodes, each a
# separate `ray start --block` process group with its own CPU count and a distinct node resource
# (madn-node-head, madn-node-worker-1, ...), all on 127.0.0.1, sharing one auth token.
#
#   infra/local/start-ray-cluster.sh [--workers N] [--head-cpus C] [--worker-cpus C]
#                                    [--dashboard]   (needed for `ray job submit`)
# Prints the cluster address, the Ray Client URL and the job-submission URL; writes pid files, logs,
# `ray.address`, `ray.client`, `dashboard.url` and the token into $MADN_INFRA_STATE
# (default ./.madn-infra).
# Drivers and `ray job submit` need:
#   export RAY_AUTH_MODE=token RAY_AUTH_TOKEN_PATH=$MADN_INFRA_STATE/ray-token
set -euo pipefail
source "$(dirname "$0")/common.sh"

workers=1 head_cpus=1 worker_cpus=1 dashboard=false
while [[ $# -gt 0 ]]; do
    case $1 in
        --workers) workers=$2; shift 2 ;;
        --head-cpus) head_cpus=$2; shift 2 ;;
        --worker-cpus) worker_cpus=$2; shift 2 ;;
        --dashboard) dashboard=true; shift ;;
        *) echo "start-ray-cluster.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
if [[ -f "$MADN_INFRA_STATE/ray-head.pid" ]] && kill -0 "$(cat "$MADN_INFRA_STATE/ray-head.pid")" 2>/dev/null; then
    echo "start-ray-cluster.sh: a head started from $MADN_INFRA_STATE is running; stop it first" >&2
    exit 1
fi
RAY=${RAY:-ray}
token="$MADN_INFRA_STATE/ray-token"
if [[ ! -s $token ]]; then
    "$PYTHON_BIN" -c 'import secrets; print(secrets.token_hex(32))' > "$token"
    chmod 600 "$token"
fi
# Token authentication (Ray >= 2.59): every node, driver and `ray job submit` needs both.
export RAY_AUTH_MODE=token RAY_AUTH_TOKEN_PATH=$token
port=$(free_port)
dash_port=$(free_port)
client_port=$(free_port)   # Ray Client (ray://); Ray's default 10001 would clash between clusters
# Ray's unix sockets live under --temp-dir and must stay below 108 bytes: use a short folder.
temp=$(mktemp -d /tmp/madn-ray-XXXXXX)
echo "$temp" > "$MADN_INFRA_STATE/ray-temp-dir"
start_daemon ray-head "$MADN_INFRA_STATE/ray-head.log" "$RAY" start --head --block \
    --node-ip-address=127.0.0.1 --port="$port" --num-cpus="$head_cpus" --num-gpus=0 \
    --resources='{"madn-node-head": 1}' --include-dashboard="$dashboard" \
    --dashboard-host=127.0.0.1 --dashboard-port="$dash_port" --ray-client-server-port="$client_port" \
    --temp-dir="$temp" --disable-usage-stats
address="127.0.0.1:$port"
head_up() {
    kill -0 "$(cat "$MADN_INFRA_STATE/ray-head.pid")" 2>/dev/null || return 2
    "$RAY" status --address="$address" >/dev/null 2>&1
}
for _ in $(seq 1 120); do
    head_up && break
    [[ $? == 2 ]] && break
    sleep 0.5
done
if ! head_up; then
    echo "start-ray-cluster.sh: the head did not come up; see $MADN_INFRA_STATE/ray-head.log" >&2
    exit 1
fi
for i in $(seq 1 "$workers"); do
    start_daemon "ray-worker-$i" "$MADN_INFRA_STATE/ray-worker-$i.log" "$RAY" start --block \
        --address="$address" --node-ip-address=127.0.0.1 --num-cpus="$worker_cpus" --num-gpus=0 \
        --resources="{\"madn-node-worker-$i\": 1}" --disable-usage-stats
done
expected=$((workers + 1))
alive_nodes() {
    RAY_ADDRESS=$address "$PYTHON_BIN" -c 'import ray; ray.init(address="auto", logging_level="ERROR"); print(sum(n["Alive"] for n in ray.nodes()))' 2>/dev/null
}
for _ in $(seq 1 120); do
    [[ "$(alive_nodes)" == "$expected" ]] && break
    sleep 0.5
done
echo "$address" > "$MADN_INFRA_STATE/ray.address"
echo "ray://127.0.0.1:$client_port" > "$MADN_INFRA_STATE/ray.client"
[[ $dashboard == true ]] && echo "http://127.0.0.1:$dash_port" > "$MADN_INFRA_STATE/dashboard.url"
nodes=$(alive_nodes || echo 0)
if [[ $nodes != "$expected" ]]; then
    echo "start-ray-cluster.sh: $nodes of $expected nodes are up; see $MADN_INFRA_STATE/*.log" >&2
    exit 1
fi
# The job API answers before the head's job agent has registered, and a job submitted then
# fails with "No available agent to submit job" (seen once, a fresh-clone `make test` on a loaded
# 2-core machine, 2026-12-03): wait until a no-op job is accepted.
if [[ $dashboard == true ]]; then
    accepted=false
    for _ in $(seq 1 120); do
        if "$RAY" job submit --address "http://127.0.0.1:$dash_port" --no-wait \
            --submission-id "madn-ready-probe-$(date +%s%N)" -- true >/dev/null 2>&1; then
            accepted=true
            break
        fi
        sleep 1
    done
    if [[ $accepted != true ]]; then
        echo "start-ray-cluster.sh: job submission at http://127.0.0.1:$dash_port accepted no job in 2 min; see $MADN_INFRA_STATE/ray-head.log" >&2
        exit 1
    fi
fi
echo "ray cluster: $address ($expected nodes; token $token)"
echo "ray client: ray://127.0.0.1:$client_port"
[[ $dashboard == true ]] && echo "job submission: http://127.0.0.1:$dash_port"
exit 0
