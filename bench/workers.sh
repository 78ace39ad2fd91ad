#!/usr/bin/env bash
# csock --workers: HTTP requests/s with 1 worker vs 2 on this machine
# (bench/servers/http_work.lua: requests that cost CPU, so the server and
# not wrk is the bottleneck; SERVER=examples/http_hello.lua for the plain
# one), wrk keep-alive -c100, ROUNDS rounds in
# alternating order; prints each round and the median ratio 2 vs 1.
# Usage: bench/workers.sh   (after `make`; ROUNDS=5 DURATION=5 by default)
set -u
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-5} DURATION=${DURATION:-5} PORT=${PORT:-18080}
SERVER=${SERVER:-bench/servers/http_work.lua}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
make -s all >/dev/null || exit 1

measure() { # workers -> requests/s
  bin/csock --workers "$1" "$SERVER" "$PORT" >/dev/null 2>&1 &
  local pid=$! i
  for i in $(seq 1 100); do
    curl -s -o /dev/null "http://127.0.0.1:$PORT/" 2>/dev/null && break
    exec 3<>/dev/tcp/127.0.0.1/$PORT 2>/dev/null && { exec 3>&-; break; }
    sleep 0.05
  done
  sleep 0.5
  wrk -t1 -c100 -d"$DURATION" "http://127.0.0.1:$PORT/" 2>/dev/null | awk '/Requests\/sec/ {print $2}'
  kill -TERM "$pid"; wait "$pid" 2>/dev/null
  sleep 0.5
}

ratios=()
for r in $(seq 1 "$ROUNDS"); do
  if [ $((r % 2)) -eq 1 ]; then one=$(measure 1); two=$(measure 2); else two=$(measure 2); one=$(measure 1); fi
  ratio=$(awk -v a="$two" -v b="$one" 'BEGIN { printf "%.2f", a / b }')
  ratios+=("$ratio")
  echo "round $r: 1 worker $one req/s, 2 workers $two req/s, ratio $ratio"
done
median=$(printf '%s\n' "${ratios[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
echo "median ratio 2 workers / 1 worker: $median"
