#!/usr/bin/env python3
"""Prints benches/peers/run.sh's table.

results.tsv: phase (full or fixed), server, ECS variant, run, server CPU ticks over the run
(user + system), of which user, VmHWM (kB), dnsperf's output with newlines as '|'. latency.tsv: server, latency in seconds (one line per query
of the verbose run). Medians over runs; CPU per query is the server's utime + stime over
the run divided by the queries dnsperf saw answered. One pair of tables per phase; the
fourth argument is the fixed phase's rate, for its title."""
import re
import statistics
import sys
from collections import defaultdict

results, latency, tick, rate = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]


def field(text, label):
    m = re.search(re.escape(label) + r":\s+([0-9.]+)", text)
    return float(m.group(1)) if m else float("nan")


runs = defaultdict(lambda: defaultdict(list))
order = []
with open(results) as f:
    for line in f:
        phase, server, variant, _run, ticks, user, hwm, out = line.rstrip("\n").split("\t", 7)
        out = out.replace("|", "\n")
        completed = field(out, "Queries completed")
        row = {
            "qps": field(out, "Queries per second"),
            "lost": field(out, "Queries lost"),
            "sent": field(out, "Queries sent"),
            "avg_ms": field(out, "Average Latency (s)") * 1000,
            "us": int(ticks) / tick * 1e6 / completed if completed else float("nan"),
            "user_us": int(user) / tick * 1e6 / completed if completed else float("nan"),
            "hwm_mb": int(hwm or 0) / 1024,
        }
        runs[phase][(server, variant)].append(row)
        if server not in order:
            order.append(server)

p99 = {}
try:
    samples = defaultdict(list)
    with open(latency) as f:
        for line in f:
            server, value = line.split()
            try:
                samples[server].append(float(value))
            except ValueError:
                pass
    for server, values in samples.items():
        values.sort()
        p99[server] = values[min(len(values) - 1, int(len(values) * 0.99))] * 1000
except FileNotFoundError:
    pass


def med(rows, key):
    return statistics.median(r[key] for r in rows)


def tables(title, runs):
    print(f"== {title}")
    header = f"{'server':8} {'ECS':9} {'queries/s':>10} {'CPU us/q':>9} {'avg ms':>7} {'lost':>7} {'VmHWM MB':>9}"
    print(header)
    print("-" * len(header))
    per_server = {}
    for server in order:
        all_rows = []
        for (s, variant), rows in runs.items():
            if s != server:
                continue
            all_rows += rows
            print(
                f"{server:8} {variant:9} {med(rows, 'qps'):10.0f} {med(rows, 'us'):9.2f} "
                f"{med(rows, 'avg_ms'):7.3f} {sum(r['lost'] for r in rows):7.0f} {max(r['hwm_mb'] for r in rows):9.1f}"
            )
        if not all_rows:
            continue
        per_server[server] = {
            "qps": med(all_rows, "qps"),
            "us": med(all_rows, "us"),
            "user_us": med(all_rows, "user_us"),
            "lost": sum(r["lost"] for r in all_rows),
            "sent": sum(r["sent"] for r in all_rows),
            "hwm": max(r["hwm_mb"] for r in all_rows),
        }

    print()
    # "kernel only": geoline's system time per query over the peer's whole CPU per query,
    # the ratio geoline would have if its own code cost nothing.
    header = (
        f"{'server':8} {'queries/s':>10} {'CPU us/q':>9} {'user us/q':>9} {'p99 ms':>7} "
        f"{'lost/sent':>16} {'VmHWM MB':>9} {'geoline CPU/q ratio':>20} {'kernel only':>11}"
    )
    print(header)
    print("-" * len(header))
    base = per_server.get("geoline", {})
    for server, s in per_server.items():
        ratio = floor = ""
        if base and server != "geoline":
            ratio = f"{base['us'] / s['us']:.2f}x"
            floor = f"{(base['us'] - base['user_us']) / s['us']:.2f}x"
        p = f"{p99[server]:7.3f}" if server in p99 else f"{'n/a':>7}"
        print(
            f"{server:8} {s['qps']:10.0f} {s['us']:9.2f} {s['user_us']:9.2f} {p} "
            f"{s['lost']:>7.0f}/{s['sent']:<8.0f} {s['hwm']:9.1f} {ratio:>20} {floor:>11}"
        )
    print()


titles = {"full": "full load (as fast as dnsperf sends)", "fixed": f"fixed rate: {rate} queries/s"}
for phase in ("full", "fixed"):
    if phase in runs:
        tables(titles[phase], runs[phase])
