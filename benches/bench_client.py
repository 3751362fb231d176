#!/usr/bin/env python3
"""The measuring client of benches/hierarchy.sh: one request at a time on one kept-alive
HTTP connection or one UDP socket, timed in-process (perf_counter_ns), and bursts of
concurrent identical lookups against the proxy's upstream counter."""
import http.client
import json
import random
import socket
import struct
import sys
import threading
import time


def dns_query(name, qid):
    header = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    qname = b"".join(bytes([len(p)]) + p.encode() for p in name.rstrip(".").split(".")) + b"\0"
    return header + qname + struct.pack(">HH", 16, 1)


def dns_time(sock, addr, name):
    qid = random.randrange(65536)
    start = time.perf_counter_ns()
    sock.sendto(dns_query(name, qid), addr)
    while True:
        data, _ = sock.recvfrom(65535)
        if struct.unpack(">H", data[:2])[0] == qid:
            break
    elapsed = (time.perf_counter_ns() - start) / 1000
    rcode = data[3] & 0x0F
    if rcode != 0:
        raise SystemExit(f"{name}: rcode {rcode}")
    return elapsed


def get_time(conn, path, accept=(200,)):
    """One GET on a kept-alive connection: its time in µs and its status (one of `accept`)."""
    start = time.perf_counter_ns()
    conn.request("GET", path)
    response = conn.getresponse()
    body = response.read()
    elapsed = (time.perf_counter_ns() - start) / 1000
    if response.status not in accept:
        raise SystemExit(f"{path}: HTTP {response.status} {body[:200]!r}")
    return elapsed, response.status


def http_time(conn, ident):
    return get_time(conn, f"/api/handles/{ident}")[0]


def trace_time(conn, origin, direction, unknown):
    """A trace's time; a 404 (an identifier no event names: a patient of the generated
    history may never have been treated) is timed too and counted in `unknown`."""
    elapsed, status = get_time(conn, f"/api/trace?from={origin}&direction={direction}", (200, 404))
    if status == 404:
        unknown.append(origin)
    return elapsed


def addr(text):
    host, port = text.rsplit(":", 1)
    return host, int(port)


def summary(label, samples):
    samples = sorted(samples)
    pick = lambda q: samples[min(len(samples) - 1, int(q * len(samples)))]
    print(f"{label}: n={len(samples)} p50 {pick(0.50):,.0f} µs, p99 {pick(0.99):,.0f} µs, max {samples[-1]:,.0f} µs")
    return pick(0.50), pick(0.99)


def main():
    what = sys.argv[1]
    if what == "http-once":
        conn = http.client.HTTPConnection(*addr(sys.argv[2]))
        print(f"{http_time(conn, sys.argv[3]):.1f}")
    elif what == "dns-once":
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.settimeout(5)
        print(f"{dns_time(sock, addr(sys.argv[2]), sys.argv[3]):.1f}")
    elif what == "summary":
        with open(sys.argv[3]) as f:
            summary(sys.argv[2], [float(line) for line in f if line.strip()])
    elif what == "http-series":
        first, count = int(sys.argv[3]), int(sys.argv[4])
        conn = http.client.HTTPConnection(*addr(sys.argv[2]))
        summary(sys.argv[5], [http_time(conn, f"86.1000.23/dev-{i:06d}") for i in range(first, first + count)])
    elif what == "dns-series":
        first, count = int(sys.argv[3]), int(sys.argv[4])
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.settimeout(5)
        server = addr(sys.argv[2])
        summary(sys.argv[5], [dns_time(sock, server, f"dev-{i:06d}.23.1000.86.hdl.medid.test") for i in range(first, first + count)])
    elif what == "trace-series":
        # Traces of the events bench's history (benches/events.rs, MEDID_BENCH_KEEP) through
        # a running node: forward from random loads, reverse from random patients, each
        # beside the same number of `/api/node` answers (the HTTP floor) on one connection.
        server, count, loads, patients = addr(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
        rng = random.Random(int(sys.argv[6]) if len(sys.argv) > 6 else 7)
        conn = http.client.HTTPConnection(*server)
        floor = summary("GET /api/node", [get_time(conn, "/api/node")[0] for _ in range(count)])
        for direction, origin in [
            ("forward", lambda: f"86.1000.23/LOAD-{rng.randrange(loads)}"),
            ("reverse", lambda: f"PAT-{rng.randrange(patients):06d}"),
        ]:
            unknown = []
            p50, p99 = summary(f"trace {direction}", [trace_time(conn, origin(), direction, unknown) for _ in range(count)])
            print(f"trace {direction} / HTTP floor: p50 {p50 / floor[0]:.1f}x, p99 {p99 / floor[1]:.1f}x "
                  f"({len(unknown)} of {count} origins named by no event: 404)")
    elif what == "burst":
        server, first, bursts, size = addr(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])

        def upstream():
            conn = http.client.HTTPConnection(*server)
            conn.request("GET", "/api/proxy/stats")
            return json.loads(conn.getresponse().read())["upstreamRequests"]

        before = upstream()
        statuses = []
        for b in range(bursts):
            ident = f"86.1000.23/dev-{first + b:06d}"
            conns = [http.client.HTTPConnection(*server) for _ in range(size)]
            for c in conns:
                c.connect()
            barrier = threading.Barrier(size)

            def one(c):
                barrier.wait()
                c.request("GET", f"/api/handles/{ident}")
                r = c.getresponse()
                r.read()
                statuses.append(r.status)

            threads = [threading.Thread(target=one, args=(c,)) for c in conns]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        sent = upstream() - before
        lookups = bursts * size
        ok = sum(1 for s in statuses if s == 200)
        print(f"{bursts} bursts of {size} identical concurrent lookups of uncached identifiers "
              f"(referrals cached): {lookups} lookups ({ok} answered 200), {sent} upstream requests, "
              f"{lookups - sent} saved ({100 * (lookups - sent) / lookups:.1f}%)")
    else:
        raise SystemExit(f"unknown command {what}")


main()
