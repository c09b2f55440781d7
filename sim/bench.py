"""`kpsim bench`: the simulator's throughput on a standard workload.

The workload: 3 brokers, a topic of 6 partitions with RF 3 and
min.insync.replicas 2, one idempotent acks=all producer with linger_ms 5
sending 100-byte keyless records at 200,000 records/s of simulated time,
history and checker on — a full `kpsim run` without faults.

Wall-clock speed depends on the machine, so the same run also measures the
raw SimPy event rate of this machine (a bare loop of timeouts) and reports
the ratio records/s ÷ SimPy events/s, which is comparable across machines.
Wall time here is measured, never simulated: it is reported, not used.
"""

from __future__ import annotations

import json
import resource
import sys
import time

import simpy

from sim.scenario import parse_scenario

BENCH_SCENARIO = """
name = "bench"
description = "kpsim bench: the standard throughput workload"

[cluster]
brokers = 3
min_insync_replicas = 2

[[topics]]
name = "bench"
partitions = 6
replication_factor = 3

[producer]
acks = "all"
linger_ms = 5

[workload]
producers = 1
topic = "bench"
records = {records}
rate_per_s = 200000
value_bytes = 100
settle_ms = 1000
"""

SIMPY_PROBE_EVENTS = 300_000


def simpy_events_per_s(events: int = SIMPY_PROBE_EVENTS) -> float:
    """This machine's raw SimPy speed: timeouts processed per wall second."""
    env = simpy.Environment()

    def ticker():
        for _ in range(events):
            yield env.timeout(1)

    env.process(ticker())
    start = time.perf_counter()  # det-ok: benchmark timing, outside any simulation
    env.run()
    return events / (time.perf_counter() - start)  # det-ok


def peak_rss_mb() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return usage / (1024 * 1024) if sys.platform == "darwin" else usage / 1024


def bench(records: int) -> dict[str, float | int]:
    """Run the standard workload once; return the figures."""
    from sim.runner import run_scenario

    assert records >= 1, "records must be positive"
    scenario = parse_scenario(BENCH_SCENARIO.format(records=records), "<bench>")
    start = time.perf_counter()  # det-ok
    result = run_scenario(scenario, seed=0)
    wall_s = time.perf_counter() - start  # det-ok
    assert result.counts["acked"] == records, result.counts
    events_rate = simpy_events_per_s()
    records_per_s = records / wall_s
    return {
        "records": records,
        "records_per_s": round(records_per_s, 1),
        "simpy_events_per_s": round(events_rate, 1),
        "ratio": round(records_per_s / events_rate, 4),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "sim_ms": round(result.sim_ms, 1),
        "wall_s": round(wall_s, 3),
    }


def run_bench(records: int, as_json: bool) -> int:
    figures = bench(records)
    if as_json:
        print(json.dumps(figures))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title="kpsim bench (3 brokers, RF 3, acks=all, 6 partitions, linger_ms 5)")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for key, value in figures.items():
        table.add_row(
            key,
            f"{value:,}"
            if isinstance(value, int)
            else f"{value:,.4g}"
            if key == "ratio"
            else f"{value:,.1f}",
        )
    Console().print(table)
    return 0
