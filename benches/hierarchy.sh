#!/usr/bin/env bash
# The hierarchy on loopback, measured: a root node (86) on 127.0.0.2, an industry node
# (86.1000) on 127.0.0.3, an enterprise node (86.1000.23) on 127.0.0.4 (DNS port 53,
# HTTP port 18080 each) and the resolving proxy on 127.0.0.5 (HTTP 18080, DNS 5300).
#
#   latency     proxy resolution over HTTP and DNS: cold with every hop (a fresh proxy
#               per sample), cold answer with the referrals cached, warm (cached);
#               p50/p99 measured by a client holding one connection (bench_client.py)
#   throughput  warm answers through the proxy against the same answers from the
#               enterprise node directly: wrk (HTTP) and dnsperf (DNS), ratio
#   coalescing  bursts of identical concurrent lookups of uncached identifiers:
#               upstream requests sent against lookups made
#
# Usage: benches/hierarchy.sh   (N=2000 identifiers, DURATION=10 s). Needs wrk, dnsperf,
# python3; run as root (port 53 on 127.0.0.2-4). Figures go to BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-2000}
DURATION=${DURATION:-10}
WORK=$(mktemp -d /tmp/medid-hierarchy.XXXXXX)
MEDID=$PWD/target/release/medid
CLIENT=$PWD/benches/bench_client.py
pids=()
proxy_pid=
cleanup() {
  for p in "${pids[@]}" $proxy_pid; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

cargo build --release --quiet
cd "$WORK"

wait_for() { for _ in $(seq 300); do grep -q '^http ' "$1" && return; sleep 0.05; done; echo "no start: $1" >&2; cat "$1" >&2; exit 1; }
serve() { # name ip args…
  local name=$1 ip=$2; shift 2
  $MEDID --data "$name" serve --dns "$ip:53" --http "$ip:18080" --rate-limit 0 "$@" > "$name.log" 2>&1 &
  pids+=($!)
  wait_for "$name.log"
}

$MEDID did new --out industry-node.key > industry-node.did 2>/dev/null
$MEDID did new --out maker-node.key > maker-node.did 2>/dev/null
$MEDID did new --out industry.key > industry.did 2>/dev/null
$MEDID did new --out maker.key > maker.did 2>/dev/null
$MEDID --data root init --name root.medid.test > /dev/null
serve root 127.0.0.2 --zone medid.test
$MEDID prefix create 86 --controller "$(cat industry.did)" --key root/admin.key --server http://127.0.0.2:18080 > /dev/null
$MEDID delegate 86.1000 --controller "$(cat industry.did)" --to-node "$(cat industry-node.did)" \
  --node-name industry.medid.test --dns 127.0.0.3:53 --http http://127.0.0.3:18080 \
  --key industry.key --server http://127.0.0.2:18080 > /dev/null
$MEDID --data industry init --name industry.medid.test --parent http://127.0.0.2:18080 \
  --prefix 86.1000 --node-key industry-node.key > /dev/null
serve industry 127.0.0.3
$MEDID delegate 86.1000.23 --controller "$(cat maker.did)" --to-node "$(cat maker-node.did)" \
  --node-name maker.medid.test --dns 127.0.0.4:53 --http http://127.0.0.4:18080 \
  --key industry.key --server http://127.0.0.3:18080 > /dev/null
$MEDID --data maker init --name maker.medid.test --parent http://127.0.0.3:18080 \
  --prefix 86.1000.23 --node-key maker-node.key > /dev/null
python3 - "$N" > catalogue.csv <<'PY'
import sys
print("id,URL")
for i in range(int(sys.argv[1])):
    print(f"86.1000.23/dev-{i:06d},https://maker.example/ifu/{i}")
PY
$MEDID --data maker import catalogue.csv --key maker.key > /dev/null 2>&1
serve maker 127.0.0.4

start_proxy() {
  [ -n "$proxy_pid" ] && { kill "$proxy_pid"; wait "$proxy_pid" 2>/dev/null || true; }
  $MEDID serve --proxy --root http://127.0.0.2:18080 --root-dns 127.0.0.2:53 \
    --dns 127.0.0.5:5300 --http 127.0.0.5:18080 > proxy.log 2>&1 &
  proxy_pid=$!
  wait_for proxy.log
}

echo "== latency through the proxy (µs)"
# Cold, every hop: a fresh proxy for each sample (HTTP and DNS, distinct identifiers).
start_proxy
: > cold-http.txt; : > cold-dns.txt
for i in $(seq 0 49); do
  start_proxy
  python3 "$CLIENT" http-once 127.0.0.5:18080 "86.1000.23/dev-$(printf %06d "$i")" >> cold-http.txt
  python3 "$CLIENT" dns-once 127.0.0.5:5300 "dev-$(printf %06d $((i + 50))).23.1000.86.hdl.medid.test" >> cold-dns.txt
done
python3 "$CLIENT" summary "http cold, every hop (3 upstream requests)" cold-http.txt
python3 "$CLIENT" summary "dns  cold, every hop (3 upstream queries)" cold-dns.txt
# Cold answers with the referrals cached, then warm.
start_proxy
python3 "$CLIENT" http-once 127.0.0.5:18080 86.1000.23/dev-000000 > /dev/null
python3 "$CLIENT" dns-once 127.0.0.5:5300 dev-000000.23.1000.86.hdl.medid.test > /dev/null
python3 "$CLIENT" http-series 127.0.0.5:18080 1 1000 "http cold answer, referrals cached (1 upstream request)"
python3 "$CLIENT" dns-series 127.0.0.5:5300 1000 1000 "dns  cold answer, referrals cached (1 upstream query)"
python3 "$CLIENT" http-series 127.0.0.5:18080 1 1000 "http warm (cached)"
python3 "$CLIENT" dns-series 127.0.0.5:5300 1000 1000 "dns  warm (cached)"
python3 "$CLIENT" http-series 127.0.0.4:18080 1 1000 "http enterprise node directly"
python3 "$CLIENT" dns-series 127.0.0.4:53 1000 1000 "dns  enterprise node directly"

echo "== warm throughput: proxy against the enterprise node directly"
# Warm every identifier used in the proxy.
python3 "$CLIENT" http-series 127.0.0.5:18080 0 1000 warm > /dev/null
python3 "$CLIENT" dns-series 127.0.0.5:5300 0 1000 warm > /dev/null
cat > random.lua <<'LUA'
math.randomseed(os.time())
request = function()
  return wrk.format("GET", string.format("/api/handles/86.1000.23/dev-%06d", math.random(0, 999)))
end
LUA
http_rps() { wrk -t2 -c32 -d"${DURATION}s" -s random.lua "http://$1" | awk '/Requests\/sec/ {print $2}'; }
for i in $(seq 0 999); do printf 'dev-%06d.23.1000.86.hdl.medid.test TXT\n' "$i"; done > queries.txt
dns_qps() { dnsperf -s "${1%:*}" -p "${1#*:}" -d queries.txt -l "$DURATION" -c 8 -Q 1000000 -q 200 2>/dev/null | awk '/Queries per second/ {print $4}'; }
hp=$(http_rps 127.0.0.5:18080); hd=$(http_rps 127.0.0.4:18080)
dp=$(dns_qps 127.0.0.5:5300); dd=$(dns_qps 127.0.0.4:53)
python3 - "$hp" "$hd" "$dp" "$dd" <<'PY'
import sys
hp, hd, dp, dd = map(float, sys.argv[1:])
print(f"http: proxy {hp:,.0f} req/s, enterprise node {hd:,.0f} req/s, ratio {hp/hd:.2f}")
print(f"dns:  proxy {dp:,.0f} q/s, enterprise node {dd:,.0f} q/s, ratio {dp/dd:.2f}")
PY

echo "== coalescing"
start_proxy
python3 "$CLIENT" http-once 127.0.0.5:18080 86.1000.23/dev-000000 > /dev/null
python3 "$CLIENT" burst 127.0.0.5:18080 1000 20 100
