#!/usr/bin/env bash
# Starts Shrink's distributed mode on one machine: a coordinator, N workers and a
# Prometheus (configured from deploy/prometheus, alert rules included) scraping them;
# prints how to reach them and how to point a Grafana at it. Runs in the foreground
# until Ctrl-C / SIGTERM, then stops every process it started and exits 0.
#
# usage: deploy/local/shrink-local.sh [--workers N] [--slots N] [--threads N]
#          [--grpc-port P] [--prometheus-port P] [--no-prometheus] [--dir DIR] [--bin DIR]
# Ports may be 0 (pick a free one); the chosen ones are printed and written to DIR/env.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
workers=2 slots=1 threads=0 grpc_port=50051 prometheus_port=9090 prometheus=1
dir="" bin="$repo/build/bin"
while [ $# -gt 0 ]; do
  case "$1" in
    --workers) workers=$2; shift 2 ;;
    --slots) slots=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --grpc-port) grpc_port=$2; shift 2 ;;
    --prometheus-port) prometheus_port=$2; shift 2 ;;
    --no-prometheus) prometheus=0; shift ;;
    --dir) dir=$2; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
    -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "shrink-local: unknown flag $1 (see --help)" >&2; exit 2 ;;
  esac
done
[[ "$workers" =~ ^[0-9]+$ ]] || { echo "shrink-local: --workers takes a number" >&2; exit 2; }
for b in shrink-coordinator shrink-worker; do
  [ -x "$bin/$b" ] || { echo "shrink-local: $bin/$b not found; run 'make build' or pass --bin" >&2; exit 1; }
done
if [ "$prometheus" = 1 ] && ! command -v prometheus > /dev/null; then
  echo "shrink-local: prometheus not installed (apt-get install prometheus) or pass --no-prometheus" >&2
  exit 1
fi
[ -n "$dir" ] || dir=$(mktemp -d /tmp/shrink-local.XXXXXX)
mkdir -p "$dir/logs"

pids=()
stop() {
  trap - INT TERM EXIT
  # Workers first, so they do not reconnect to a stopping coordinator; then the rest.
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill -TERM "${pids[i]}" 2> /dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2> /dev/null || true; done
  echo "shrink-local: stopped (state and logs in $dir)"
}
trap 'stop; exit 0' INT TERM
trap stop EXIT

# wait_line FILE PATTERN PID: prints the first line of FILE matching PATTERN, waiting up
# to 60 s for the process PID to print it; fails if PID exits first.
wait_line() {
  local line
  for _ in $(seq 600); do
    if line=$(grep -m1 -E "$2" "$1" 2> /dev/null); then echo "$line"; return 0; fi
    kill -0 "$3" 2> /dev/null || { echo "shrink-local: process exited; see $1" >&2; tail -5 "$1" >&2; return 1; }
    sleep 0.1
  done
  echo "shrink-local: timed out waiting for '$2' in $1" >&2
  return 1
}
# value KEY LINE: the value of KEY=VALUE in a ready line.
value() { tr ' ' '\n' <<< "$2" | sed -n "s/^$1=//p"; }

"$bin/shrink-coordinator" --listen "127.0.0.1:$grpc_port" --metrics 127.0.0.1:0 --state "$dir/state" \
  > "$dir/logs/coordinator.log" 2>&1 &
pids+=($!)
ready=$(wait_line "$dir/logs/coordinator.log" "^shrink-coordinator ready" "${pids[0]}")
grpc=$(value grpc "$ready")
coordinator_metrics=$(value metrics "$ready")

worker_metrics=()
for ((i = 0; i < workers; i++)); do
  "$bin/shrink-worker" --coordinator "$grpc" --metrics 127.0.0.1:0 --slots "$slots" --threads "$threads" \
    --cache "$dir/worker$i" --name "local-worker-$i" > "$dir/logs/worker$i.log" 2>&1 &
  pids+=($!)
  ready=$(wait_line "$dir/logs/worker$i.log" "^shrink-worker ready" "$!")
  worker_metrics+=("$(value metrics "$ready")")
done

prometheus_url="-"
if [ "$prometheus" = 1 ]; then
  # The shipped configuration and rules; only the targets are written here.
  mkdir -p "$dir/prometheus/targets"
  cp "$repo/deploy/prometheus/prometheus.yml" "$repo/deploy/prometheus/shrink-alerts.yml" "$dir/prometheus/"
  echo "[{\"targets\": [\"$coordinator_metrics\"]}]" > "$dir/prometheus/targets/coordinator.json"
  list=$(printf '"%s", ' "${worker_metrics[@]}")
  echo "[{\"targets\": [${list%, }]}]" > "$dir/prometheus/targets/workers.json"
  prometheus --config.file="$dir/prometheus/prometheus.yml" --storage.tsdb.path="$dir/prometheus/data" \
    --web.listen-address="127.0.0.1:$prometheus_port" > "$dir/logs/prometheus.log" 2>&1 &
  pids+=($!)
  listening=$(wait_line "$dir/logs/prometheus.log" 'msg="Listening on"' "$!")
  prometheus_url="http://127.0.0.1:${listening##*:}"
  prometheus_url=${prometheus_url%\"}
fi

cat > "$dir/env" << ENV
SHRINK_COORDINATOR=$grpc
SHRINK_COORDINATOR_METRICS=$coordinator_metrics
SHRINK_WORKER_METRICS="${worker_metrics[*]}"
SHRINK_PROMETHEUS=$prometheus_url
SHRINK_PIDS="${pids[*]}"
ENV

cat << MESSAGE
Shrink is running locally ($workers worker(s); state and logs in $dir):
  coordinator   $grpc (metrics http://$coordinator_metrics/metrics)
  workers       ${worker_metrics[*]/#/http://}
  prometheus    $prometheus_url

Submit a job:
  export SHRINK_COORDINATOR=$grpc
  $bin/shrink submit job.yaml && $bin/shrink watch JOB_ID

Grafana: add a Prometheus data source with URL $prometheus_url, then import
deploy/grafana/shrink-overview.json and deploy/grafana/shrink-job.json
(Dashboards > New > Import; pick that data source).

Ctrl-C stops everything.
MESSAGE
echo "shrink-local ready grpc=$grpc prometheus=$prometheus_url dir=$dir"
# Wait for a signal (or for the coordinator to die).
wait "${pids[0]}" || true
echo "shrink-local: the coordinator exited; see $dir/logs/coordinator.log" >&2
stop
exit 1
