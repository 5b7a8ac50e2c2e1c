#!/usr/bin/env bash
# Stop exactly the Ray nodes that start-ray-cluster.sh started (by their pid files in
# $MADN_INFRA_STATE): workers first, then the head. Never runs `ray stop`, which would end every
# Ray process of the machine.
set -uo pipefail
source "$(dirname "$0")/common.sh"
for pidfile in "$MADN_INFRA_STATE"/ray-worker-*.pid; do
    [[ -e $pidfile ]] || continue
    stop_daemon "$(basename "$pidfile" .pid)"
done
stop_daemon ray-head
rm -f "$MADN_INFRA_STATE/ray.address" "$MADN_INFRA_STATE/ray.client" "$MADN_INFRA_STATE/dashboard.url"
if [[ -f "$MADN_INFRA_STATE/ray-temp-dir" ]]; then
    temp=$(cat "$MADN_INFRA_STATE/ray-temp-dir")
    [[ $temp == /tmp/madn-ray-* ]] && rm -rf "$temp"
    rm -f "$MADN_INFRA_STATE/ray-temp-dir"
fi
