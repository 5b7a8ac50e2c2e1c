# Shared helpers of the infra/local scripts (sourced, not run).
# State (pid files, logs, addresses, the Ray auth token) lives in $MADN_INFRA_STATE
# (default: .madn-infra in the current folder).

MADN_INFRA_STATE=${MADN_INFRA_STATE:-$PWD/.madn-infra}
mkdir -p "$MADN_INFRA_STATE"
PYTHON_BIN=${PYTHON_BIN:-python3}

free_port() {
    "$PYTHON_BIN" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# start_daemon NAME LOG CMD...: run CMD in its own session (process group) and record its pid.
start_daemon() {
    local name=$1 log=$2
    shift 2
    setsid "$@" >"$log" 2>&1 < /dev/null &
    echo $! > "$MADN_INFRA_STATE/$name.pid"
}

# stop_daemon NAME: end exactly the process group started under NAME (TERM, then KILL).
stop_daemon() {
    local name=$1 pidfile="$MADN_INFRA_STATE/$1.pid" pid
    [[ -f $pidfile ]] || return 0
    pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM -- "-$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do
            kill -0 -- "-$pid" 2>/dev/null || break
            sleep 0.2
        done
        kill -KILL -- "-$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
    echo "stopped $name (process group $pid)"
}

# wait_for CMD...: retry CMD for up to 60 s.
wait_for() {
    for _ in $(seq 1 120); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.5
    done
    return 1
}
