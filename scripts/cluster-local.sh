#!/usr/bin/env bash
# The compose topology without containers, on 127.0.0.1: (PostgreSQL,) one learner, N rollout nodes, one reward
# node, each a background `dotnet Scst.Host.dll` with its log in <run-dir>/logs/. Waits for the learner's
# summary.json and stops everything on exit (Ctrl-C included).
#
#   scripts/cluster-local.sh [-n ROLLOUTS] [--config FILE] [--run-dir DIR] [--port P0] [--postgres | --pg CONN]
#                            [--app PATH/Scst.Host.dll] [--timeout SECONDS] [--resume]
#
# Persistence: the learner owns the data order; its journal (the data cursor and every applied update) is the
# only state the training path persists. Rollout and reward nodes keep nothing but their replica's weights. By
# default the journal is SQLite in <run-dir>/learner/, which is enough while the learner stays on this machine;
# --postgres (a throw-away PostgreSQL server in <run-dir>/postgres, needs the Debian `postgresql` package) or
# --pg "Host=...;Port=...;Database=...;Username=...;Password=..." (an existing server) keep it in PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."

rollouts=2
config=configs/demo_scst.yaml   # SCST from the demo's CE checkpoint: run `demo` first, or pass --config
run_dir=runs/cluster-local
port0=4053
pg_mode=none
pg_conn=""
app=""
timeout_s=0
resume=()

usage() { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
while [ $# -gt 0 ]; do
    case $1 in
        -n|--rollouts) rollouts=$2; shift 2 ;;
        --config) config=$2; shift 2 ;;
        --run-dir) run_dir=$2; shift 2 ;;
        --port) port0=$2; shift 2 ;;
        --postgres) pg_mode=local; shift ;;
        --pg) pg_mode=external; pg_conn=$2; shift 2 ;;
        --app) app=$2; shift 2 ;;
        --timeout) timeout_s=$2; shift 2 ;;
        --resume) resume=(--resume); shift ;;
        -h|--help) usage 0 ;;
        *) echo "cluster-local: unknown argument '$1'" >&2; usage 2 >&2 ;;
    esac
done
case $rollouts in ''|*[!0-9]*) echo "cluster-local: -n needs a number, got '$rollouts'" >&2; exit 2 ;; esac
case $port0 in ''|*[!0-9]*) echo "cluster-local: --port needs a number, got '$port0'" >&2; exit 2 ;; esac
[ -f "$config" ] || { echo "cluster-local: config '$config' does not exist" >&2; exit 2; }

run_dir=$(mkdir -p "$run_dir" && cd "$run_dir" && pwd)
config=$(cd "$(dirname "$config")" && pwd)/$(basename "$config")
logs=$run_dir/logs
mkdir -p "$logs"

if [ -z "$app" ]; then
    echo "[cluster] building src/Host (Release)"
    dotnet build src/Host -c Release -v q -nologo >"$logs/build.log" 2>&1 || { tail -n 30 "$logs/build.log" >&2; exit 1; }
    app=src/Host/bin/Release/net10.0/Scst.Host.dll
fi
[ -f "$app" ] || { echo "cluster-local: '$app' does not exist" >&2; exit 2; }
app=$(cd "$(dirname "$app")" && pwd)/$(basename "$app")

pids=()
pg_bin=""
pg_data=""
cleanup() {
    local code=$?
    trap - EXIT INT TERM
    # SIGINT first: `train` finishes its update and writes a checkpoint; then give everyone up to 60 s.
    for pid in "${pids[@]}"; do kill -INT "$pid" 2>/dev/null || true; done
    for _ in $(seq 1 60); do
        local alive=0
        for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        [ $alive -eq 0 ] && break
        sleep 1
    done
    for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    if [ -n "$pg_data" ]; then
        pg_ctl_as "$pg_bin/pg_ctl" -D "$pg_data" -m fast stop >/dev/null 2>&1 || true
    fi
    echo "[cluster] stopped; logs in $logs"
    exit $code
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# PostgreSQL refuses to run as root; under root, run its tools as the `postgres` user.
pg_ctl_as() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

hocon=()
if [ "$pg_mode" != none ]; then
    if [ "$pg_mode" = local ]; then
        pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
        [ -n "$pg_bin" ] && [ -x "$pg_bin/pg_ctl" ] || { echo "cluster-local: --postgres needs PostgreSQL (apt-get install postgresql)" >&2; exit 2; }
        pg_port=$((port0 + 1000))
        pg_root=$run_dir/postgres
        mkdir -p "$pg_root"
        [ "$(id -u)" -eq 0 ] && chown postgres "$pg_root"
        if [ ! -f "$pg_root/data/PG_VERSION" ]; then
            pg_ctl_as "$pg_bin/initdb" -D "$pg_root/data" -A trust -U scst >"$logs/postgres-init.log" 2>&1
        fi
        pg_data=$pg_root/data
        pg_ctl_as "$pg_bin/pg_ctl" -D "$pg_data" -l "$pg_root/server.log" -w \
            -o "-c listen_addresses=127.0.0.1 -c port=$pg_port -c unix_socket_directories=$pg_root" start >/dev/null
        pg_conn="Host=127.0.0.1;Port=$pg_port;Database=postgres;Username=scst"
        echo "[cluster] PostgreSQL on 127.0.0.1:$pg_port (data in $pg_data)"
    fi
    pg_conf=$run_dir/postgres.conf
    esc=${pg_conn//\\/\\\\}; esc=${esc//\"/\\\"}
    printf 'scst.persistence {\n  backend = postgresql\n  connection-string = "%s"\n}\n' "$esc" > "$pg_conf"
    hocon=(--hocon "$pg_conf")
fi

# start NAME ROLE PORT [SEED]: one node in the background, its output in logs/NAME.log.
start() {
    local name=$1 role=$2 port=$3 seed=${4:-}
    local args=(--role "$role" --port "$port" --run-dir "$run_dir/$name" "${hocon[@]}")
    [ -n "$seed" ] && args+=(--seed-nodes "$seed")
    dotnet "$app" "${args[@]}" train --config "$config" "${resume[@]}" >"$logs/$name.log" 2>&1 &
    pids+=($!)
    echo "[cluster] $name: pid $! role=$role 127.0.0.1:$port log $logs/$name.log"
}

seed=akka.tcp://scst@127.0.0.1:$port0
start learner learner "$port0"
for i in $(seq 1 "$rollouts"); do start "rollout-$i" rollout $((port0 + i)) "$seed"; done
start reward reward $((port0 + rollouts + 1)) "$seed"

summary=$run_dir/learner/summary.json
echo "[cluster] waiting for $summary (Ctrl-C stops every node)"
waited=0
while [ ! -f "$summary" ]; do
    if ! kill -0 "${pids[0]}" 2>/dev/null; then
        wait "${pids[0]}" && code=0 || code=$?
        echo "[cluster] the learner exited (code $code) without a summary; last lines of its log:" >&2
        tail -n 20 "$logs/learner.log" >&2
        exit 1
    fi
    if [ "$timeout_s" -gt 0 ] && [ "$waited" -ge "$timeout_s" ]; then
        echo "[cluster] no summary after $timeout_s s" >&2
        exit 124
    fi
    sleep 2; waited=$((waited + 2))
done
echo "[cluster] done: $summary"
cat "$summary"; echo
