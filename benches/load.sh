#!/usr/bin/env bash
# Side-by-side load tests of a medid node against reference servers holding the same
# records, in one run, reporting ratios (figures go to BENCHMARKS.md):
#
#   dns   medid vs NSD serving the same zone (`medid export-zone`), dnsperf, same
#         query mix (90% hits, 10% misses), response rate limiting off on both
#   http  medid's /api/handles/{id} vs nginx serving the same records as static JSON
#         files, wrk with random identifiers
#   mem   resident memory of `medid serve` holding all the identifiers (it reads its
#         index into memory at start: with 1M identifiers that takes a few seconds)
#
# Usage: benches/load.sh [dns|http|all]   (N=1000000 identifiers, DURATION=20 s per
# measurement, ROUNDS=3 alternating rounds, MEDID=path of a built binary to
# measure instead of building one)
# Needs: dnsperf, nsd, wrk, nginx-light (Debian packages). Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-1000000}
DURATION=${DURATION:-20}
WORK=${WORK:-/tmp/medid-load-$N}
# Answers medid's cache holds: enough for every identifier's DNS and HTTP answers, as
# nginx's page cache and NSD's memory hold every record.
CACHE=${CACHE:-$((2 * N + 100000))}
ROUNDS=${ROUNDS:-3}
what=${1:-all}
# MEDID: the medid binary to measure (default: a release build of this tree, made here,
# under CARGO_TARGET_DIR when set).
MEDID=${MEDID:-}
ZONE=medid.test
DNS_NSD=127.0.0.1:5391
DNS_MEDID=127.0.0.1:5392
HTTP_NGINX=127.0.0.1:8391
HTTP_MEDID=127.0.0.1:8392
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

if [ -z "$MEDID" ]; then
  cargo build --release --quiet
  MEDID=${CARGO_TARGET_DIR:-target}/release/medid
fi
mkdir -p "$WORK"

# One node with N identifiers (kept between runs: delete $WORK to start over).
if [ ! -f "$WORK/done" ]; then
  rm -rf "$WORK"/*
  $MEDID --data "$WORK/node" init --name "$ZONE" > /dev/null
  maker=$($MEDID did new --out "$WORK/maker.key" 2>/dev/null)
  $MEDID --data "$WORK/node" prefix create 86.1000.23 --controller "$maker" --key "$WORK/node/admin.key" > /dev/null
  python3 - "$N" > "$WORK/catalogue.csv" <<'PY'
import sys
n = int(sys.argv[1])
print("id,URL,DESC")
for i in range(n):
    print(f"86.1000.23/dev-{i:07d},https://maker.example/ifu/{i},infusion pump model {i % 97}")
PY
  echo "importing $N identifiers…" >&2
  start=$(date +%s.%N)
  $MEDID --data "$WORK/node" import "$WORK/catalogue.csv" --key "$WORK/maker.key" --batch 4096 > /dev/null
  echo "import: $(python3 -c "print(f'{$N/($(date +%s.%N)-$start):.0f}')") identifiers/s (durable, signed, one process)" >&2
  $MEDID --data "$WORK/node" export-zone --zone "$ZONE" > "$WORK/$ZONE.zone"
  touch "$WORK/done"
fi

serve_medid() {
  # UDP_SOCKETS / UDP_THREADS: medid's --udp-sockets / --udp-threads (default: one
  # socket per core, one thread each; with 1M names 1 socket x 2 threads was slower).
  $MEDID --data "$WORK/node" serve --zone "$ZONE" --dns "$DNS_MEDID" --http "$HTTP_MEDID" --rate-limit 0 \
    --cache-size "$CACHE" --udp-sockets "${UDP_SOCKETS:-0}" --udp-threads "${UDP_THREADS:-1}" > "$WORK/serve.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1200); do grep -q '^http ' "$WORK/serve.log" && return; sleep 0.1; done
  echo "medid serve did not start" >&2; cat "$WORK/serve.log" >&2; exit 1
}

# Prints each round's figures of the reference ($2) and medid ($3) and the ratio of
# their means, from the dnsperf ($1 = dns) or wrk ($1 = http) outputs of the rounds.
rounds() {
  python3 - "$WORK" "$ROUNDS" "$@" <<'PY'
import re, sys
work, rounds, kind, ref, medid = sys.argv[1], int(sys.argv[2]), *sys.argv[3:6]
if kind == "dns":
    unit, rate = "QPS", r"Queries per second:\s+([\d.]+)"
    detail = lambda t: "lost " + re.search(r"Queries lost:\s+(\d+)", t).group(1) + "; " + re.search(r"Response codes:\s+(.*)", t).group(1)
    path = lambda name, r: f"{work}/dnsperf-{name}-{r}.txt"
else:
    unit, rate = "req/s", r"Requests/sec:\s+([\d.]+)"
    def detail(t):
        non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", t)
        return "mean latency " + re.search(r"Latency\s+(\S+)", t).group(1) + ", non-2xx " + (non2xx.group(1) if non2xx else "0")
    path = lambda name, r: f"{work}/wrk-{name}-{r}.txt"
total = {ref: 0.0, medid: 0.0}
for r in range(1, rounds + 1):
    got, line = {}, []
    for name in (ref, medid):
        text = open(path(name, r)).read()
        got[name] = float(re.search(rate, text).group(1))
        total[name] += got[name]
        line.append(f"{name} {got[name]:7.0f} {unit} ({detail(text)})")
    print(f"{kind:4} round {r}: " + ", ".join(line) + f", ratio {got[medid] / got[ref]:.2f}")
for name in (ref, medid):
    print(f"{kind:4} {name:6} {total[name] / rounds:10.0f} {unit} (mean of {rounds} rounds)")
print(f"{kind:4} medid / {ref} = {total[medid] / total[ref]:.2f}")
PY
}

dns() {
  # Queries: 90% names of registered identifiers, 10% names that do not exist.
  python3 - "$N" "$ZONE" > "$WORK/queries.txt" <<'PY'
import random, sys
n, zone = int(sys.argv[1]), sys.argv[2]
random.seed(7)
for _ in range(200000):
    if random.random() < 0.9:
        print(f"dev-{random.randrange(n):07d}.23.1000.86.hdl.{zone} TXT")
    else:
        print(f"nx-{random.randrange(10**9)}.23.1000.86.hdl.{zone} TXT")
PY
  cat > "$WORK/nsd.conf" <<CONF
server:
  ip-address: ${DNS_NSD%:*}@${DNS_NSD#*:}
  server-count: 2
  zonesdir: "$WORK"
  zonelistfile: "$WORK/zone.list"
  database: ""
  pidfile: "$WORK/nsd.pid"
  xfrdfile: "$WORK/xfrd.state"
  username: ""
  logfile: "$WORK/nsd.log"
  hide-version: yes
  round-robin: no
  rrl-ratelimit: 0
remote-control:
  control-enable: no
zone:
  name: $ZONE
  zonefile: $ZONE.zone
CONF
  nsd -d -c "$WORK/nsd.conf" &
  pids+=($!)
  serve_medid
  for _ in $(seq 600); do dig +short +time=1 +tries=1 -p "${DNS_NSD#*:}" @"${DNS_NSD%:*}" "$ZONE" SOA > /dev/null 2>&1 && break; sleep 0.5; done
  # The same warm-up for both (one pass of the query file), then ROUNDS alternating
  # rounds of DURATION seconds, NSD then medid in each, as for HTTP below.
  for target in nsd:$DNS_NSD medid:$DNS_MEDID; do
    name=${target%%:*}; addr=${target#*:}
    dnsperf -s "${addr%:*}" -p "${addr#*:}" -d "$WORK/queries.txt" -c 16 -q 200 -n 1 > "$WORK/dnsperf-warm-$name.txt" 2>&1
  done
  for round in $(seq "$ROUNDS"); do
    for target in nsd:$DNS_NSD medid:$DNS_MEDID; do
      name=${target%%:*}; addr=${target#*:}
      dnsperf -s "${addr%:*}" -p "${addr#*:}" -d "$WORK/queries.txt" -c 16 -q 200 -l "$DURATION" > "$WORK/dnsperf-$name-$round.txt" 2>&1
    done
  done
  rounds dns nsd medid
}

http() {
  if [ ! -f "$WORK/static.done" ]; then
    echo "writing $N static JSON files for nginx…" >&2
    python3 - "$N" "$WORK/static" <<'PY'
import json, os, sys
n, root = int(sys.argv[1]), sys.argv[2]
base = os.path.join(root, "api/handles/86.1000.23")
os.makedirs(base, exist_ok=True)
for i in range(n):
    h = f"86.1000.23/dev-{i:07d}"
    body = {"responseCode": 1, "handle": h, "values": [
        {"index": 1, "type": "URL", "data": {"format": "string", "value": f"https://maker.example/ifu/{i}"}, "ttl": 86400, "timestamp": "2026-11-21T10:00:00Z"},
        {"index": 2, "type": "DESC", "data": {"format": "string", "value": f"infusion pump model {i % 97}"}, "ttl": 86400, "timestamp": "2026-11-21T10:00:00Z"}]}
    with open(os.path.join(base, f"dev-{i:07d}"), "w") as f:
        json.dump(body, f)
PY
    touch "$WORK/static.done"
  fi
  # nginx reads the files through the page cache, as medid holds its records in memory:
  # read them all once so that neither waits on the disk.
  find "$WORK/static" -type f -print0 | xargs -0 cat > /dev/null
  cat > "$WORK/nginx.conf" <<CONF
worker_processes 2;
worker_rlimit_nofile 16384;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log;
daemon off;
events { worker_connections 4096; }
http {
  access_log off;
  default_type application/json;
  open_file_cache max=8000 inactive=60s;
  server { listen $HTTP_NGINX; root $WORK/static; }
}
CONF
  nginx -c "$WORK/nginx.conf" &
  pids+=($!)
  pgrep -f "medid --data $WORK/node serve" > /dev/null || serve_medid
  cat > "$WORK/random.lua" <<LUA
math.randomseed(7)
request = function()
  return wrk.format("GET", string.format("/api/handles/86.1000.23/dev-%07d", math.random(0, $N - 1)))
end
LUA
  # The warm-up pass: every identifier once, in order (wrk's two threads take every
  # other one), so that each server has answered each record before it is measured.
  cat > "$WORK/every.lua" <<LUA
local threads = 0
function setup(thread)
  thread:set("next_id", threads)
  threads = threads + 1
end
request = function()
  local id = next_id % $N
  next_id = next_id + 2
  return wrk.format("GET", string.format("/api/handles/86.1000.23/dev-%07d", id))
end
LUA
  sleep 1
  for target in nginx:$HTTP_NGINX medid:$HTTP_MEDID; do
    name=${target%%:*}; addr=${target#*:}
    # Long enough for one pass at 40,000 req/s; what it reached is reported.
    wrk -t2 -c64 -d"$((N / 40000 + 5))s" -s "$WORK/every.lua" "http://$addr" > "$WORK/warm-$name.txt" 2>&1
    echo "http $name first pass (every identifier, answered for the first time): $(grep -oE '^ *[0-9]+ requests' "$WORK/warm-$name.txt" | grep -oE '[0-9]+') requests for $N identifiers, $(grep -oE 'Requests/sec: *[0-9.]+' "$WORK/warm-$name.txt" | grep -oE '[0-9.]+$') req/s"
  done
  # The measurement: ROUNDS rounds of DURATION seconds each, nginx then medid in every
  # round, so that a change of the machine's speed during the run (this virtual
  # machine's varies by ±15%) falls on both servers alike.
  for round in $(seq "$ROUNDS"); do
    for target in nginx:$HTTP_NGINX medid:$HTTP_MEDID; do
      name=${target%%:*}; addr=${target#*:}
      wrk -t2 -c64 -d"${DURATION}s" -s "$WORK/random.lua" "http://$addr" > "$WORK/wrk-$name-$round.txt" 2>&1
    done
  done
  rounds http nginx medid
}

mem() {
  pgrep -f "medid --data $WORK/node serve" > /dev/null || serve_medid
  pid=$(pgrep -f "medid --data $WORK/node serve" | head -1)
  echo "mem  medid serve with $N identifiers: $(($(ps -o rss= -p "$pid") / 1024)) MiB resident"
}

case $what in
  dns) dns; mem ;;
  http) http; mem ;;
  all) dns; http; mem ;;
  *) echo "usage: $0 [dns|http|all]" >&2; exit 2 ;;
esac
