#!/usr/bin/env python3
"""Summarises bench/gateway/run.sh's results.tsv: medians per path, ratios
and the issue's targets. Usage: report.py results.tsv CLK_TCK [meta.txt]"""

import os
import re
import statistics
import sys

UNITS = {"us": 1.0, "ms": 1000.0, "s": 1_000_000.0}


def micros(text):
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if not m:
        raise ValueError(f"latency {text!r}")
    return float(m.group(1)) * UNITS[m.group(2)]


def parse_wrk(path):
    text = open(path).read()
    out = {"non2xx": 0, "socket_errors": 0}
    m = re.search(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m)", text, re.M)
    out["requests"] = int(m.group(1))
    out["rps"] = float(re.search(r"^Requests/sec:\s+([\d.]+)", text, re.M).group(1))
    for pct in ("50", "99"):
        out["p" + pct] = micros(re.search(rf"^\s+{pct}(?:\.000)?%\s+(\S+)", text, re.M).group(1))
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if m:
        out["non2xx"] = int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        out["socket_errors"] = sum(int(g) for g in m.groups())
    return out


def main():
    results, clk = sys.argv[1], int(sys.argv[2])
    meta = open(sys.argv[3]).read().strip() if len(sys.argv) > 3 else ""
    runs = {}
    order = []
    with open(results) as f:
        header = f.readline().rstrip("\n").split("\t")
        for line in f:
            row = dict(zip(header, line.rstrip("\n").split("\t")))
            # Next to results.tsv (the directory may have been moved).
            raw = os.path.join(os.path.dirname(os.path.abspath(results)), "raw", os.path.basename(row["raw"]))
            w = parse_wrk(raw)
            w["load1"] = float(row["load1"])
            w["cpu_us"] = int(row["cpu_ticks"]) / clk / w["requests"] * 1e6
            w["upstream_cpu_us"] = int(row["upstream_cpu_ticks"]) / clk / w["requests"] * 1e6
            wall = float(row["wall_s"])
            w["busy_cores"] = int(row["sys_busy_ticks"]) / clk / wall
            ours = int(row["cpu_ticks"]) + int(row["wrk_cpu_ticks"]) + (int(row["upstream_cpu_ticks"]) if row["path"] != "direct" else 0)
            # CPU used by anything but wrk, the proxy and the upstream
            # (other engineers' builds...), plus softirq time no process
            # was charged with.
            w["other_cores"] = max(0, int(row["sys_busy_ticks"]) - ours) / clk / wall
            w["reached"] = int(row["upstream_requests"]) / w["requests"]
            w["conns"] = int(row["upstream_connections"])
            w["attempts"] = int(row.get("attempts", 1))
            if row["path"] not in runs:
                order.append(row["path"])
            runs.setdefault(row["path"], []).append(w)

    med = {}
    for p in order:
        rs = runs[p]
        med[p] = {k: statistics.median(r[k] for r in rs) for k in ("rps", "p50", "p99", "cpu_us", "upstream_cpu_us", "busy_cores", "conns", "other_cores")}
        med[p]["rounds"] = len(rs)
        med[p]["rps_all"] = [r["rps"] for r in rs]
        med[p]["non2xx"] = sum(r["non2xx"] for r in rs)
        med[p]["socket_errors"] = sum(r["socket_errors"] for r in rs)
        med[p]["reached_min"] = min(r["reached"] for r in rs)
        med[p]["load"] = (min(r["load1"] for r in rs), max(r["load1"] for r in rs))

    names = {
        "direct": "direct to upstream",
        "nginx": "nginx proxy_pass (keepalive)",
        "authgate": "authgate gateway",
        "apache": "Apache + mod_auth_openidc",
        "authgate-open": "authgate, authentication Disabled",
        "authgate-token": "authgate route with an injected client_credentials token",
        "authgate-redis": "authgate, sessions in Redis (CPU: gateway + redis-server)",
    }
    lines = []
    if meta:
        lines += [meta, ""]
    lines.append("| path | req/s (median) | p50 | p99 | proxy CPU/req | upstream CPU/req | req/s per round | non-2xx | socket errors | reached upstream | upstream conns opened | other CPU |")
    lines.append("|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|")
    for p in order:
        m = med[p]
        cpu = "(upstream)" if p == "direct" else f"{m['cpu_us']:.1f} µs"
        lines.append(
            f"| {names.get(p, p)} | {m['rps']:,.0f} | {m['p50']:.0f} µs | {m['p99']:.0f} µs | {cpu} | {m['upstream_cpu_us']:.1f} µs | "
            f"{', '.join(f'{x:,.0f}' for x in m['rps_all'])} | {m['non2xx']} | {m['socket_errors']} | {'yes' if m['reached_min'] >= 0.999 else 'NO (%.3f)' % m['reached_min']} | {m['conns']:.0f} | {m['other_cores']:.2f} cores |"
        )
    lines.append("")
    lines.append(
        "Medians over the rounds. CPU/req: utime+stime (/proc/PID/stat) of the proxy's processes "
        "(nginx/Apache: master and workers) over the run, divided by wrk's completed requests; for "
        "the direct path the upstream's own. Reached upstream: the upstream's request counter "
        "(stub_status) grew by at least wrk's completed requests in every round, so no request was "
        "answered by the proxy itself (e.g. a login redirect). Upstream conns opened: new "
        "connections the upstream accepted during the run (0 = the proxy reused pooled ones). "
        "Other CPU: cores busy with anything but wrk, the proxy and the upstream (noise)."
    )
    loads = [r["load1"] for rs in runs.values() for r in rs]
    busy = [r["busy_cores"] for rs in runs.values() for r in rs]
    lines.append("")
    lines.append(
        f"1-min load at the start of each run: {min(loads):.2f}–{max(loads):.2f} (median {statistics.median(loads):.2f}); "
        f"CPUs busy during runs: median {statistics.median(busy):.2f} of the machine's cores; "
        f"runs redone because other processes were busy: {sum(r['attempts'] - 1 for rs in runs.values() for r in rs)}."
    )

    ok = True
    if "authgate" in med:
        lines.append("")
        a = med["authgate"]
        checks = []
        if "nginx" in med:
            n = med["nginx"]
            r = a["rps"] / n["rps"]
            per_round = [x / y for x, y in zip(a["rps_all"], n["rps_all"])]
            added = a["p99"] - n["p99"]
            checks.append((f"authgate / nginx throughput = {r:.2f}× (per round {min(per_round):.2f}–{max(per_round):.2f}×)", "≥ 0.9×", r >= 0.9))
            checks.append((f"p99 added over nginx = {added:+.0f} µs ({n['p99']:.0f} → {a['p99']:.0f} µs)", "< 1 ms", added < 1000))
            checks.append((f"CPU per request: authgate {a['cpu_us']:.1f} µs vs nginx {n['cpu_us']:.1f} µs = {a['cpu_us'] / n['cpu_us']:.2f}×", "", None))
        if "apache" in med:
            ap = med["apache"]
            r = a["rps"] / ap["rps"]
            checks.append((f"authgate / Apache+mod_auth_openidc throughput = {r:.2f}×", "≥ 3×", r >= 3))
            checks.append((f"CPU per request: authgate {a['cpu_us']:.1f} µs vs Apache {ap['cpu_us']:.1f} µs = {ap['cpu_us'] / a['cpu_us']:.1f}× less", "", None))
        if "authgate-redis" in med:
            rd = med["authgate-redis"]
            checks.append((
                f"cost of the Redis store (authgate-redis vs authgate): {rd['cpu_us'] - a['cpu_us']:+.1f} µs CPU/req, "
                f"p99 {rd['p99'] - a['p99']:+.0f} µs, throughput {rd['rps'] / a['rps']:.2f}×",
                "",
                None,
            ))
        if "authgate-open" in med:
            o = med["authgate-open"]
            checks.append((
                f"cost of the session check (authgate vs authgate with authentication Disabled): "
                f"{a['cpu_us'] - o['cpu_us']:+.1f} µs CPU/req, throughput {a['rps'] / o['rps']:.2f}×",
                "",
                None,
            ))
        if "authgate-token" in med:
            t = med["authgate-token"]
            checks.append((
                f"cost of token injection (the /tok/ route vs the user's own token): "
                f"{t['cpu_us'] - a['cpu_us']:+.1f} µs CPU/req, throughput {t['rps'] / a['rps']:.2f}×",
                "",
                None,
            ))
        for text, target, passed in checks:
            if passed is None:
                lines.append(f"- {text}")
            else:
                ok &= passed
                lines.append(f"- {text}: target {target}: {'MET' if passed else 'NOT MET'}")
    errors = [p for p in order if med[p]["non2xx"] or med[p]["socket_errors"] or med[p]["reached_min"] < 0.999]
    if errors:
        lines.append("")
        lines.append(f"WARNING: errors or requests that did not reach the upstream on: {', '.join(errors)}")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
