#!/usr/bin/env python3
"""Watches a running polybrief: each time a line of its log (stderr) appears, records the
process's CPU seconds (user+system, from /proc) and the machine's load average, one JSON
object per line. report.py turns the marks at `stage …` lines into CPU seconds per stage.

Wall time on a machine other jobs also use says little; CPU seconds do not depend on the
neighbours (much), and the load average says how busy the machine was.

  monitor.py --parent PID --log run1.log --out run1.cpu.jsonl

PID is a process that starts polybrief (a shell, /usr/bin/time); its descendant named
polybrief is watched. Stops when
the process is gone.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import time

TICKS = os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    out = []
    for task in pathlib.Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return out


def find_polybrief(pid: int) -> int | None:
    """The descendant of `pid` (a shell, env, taskset or time in between) named polybrief."""
    queue = [pid]
    while queue:
        p = queue.pop(0)
        try:
            if pathlib.Path(f"/proc/{p}/comm").read_text().strip() == "polybrief":
                return p
        except OSError:
            continue
        queue += children(p)
    return None


def cpu_seconds(pid: int) -> float | None:
    try:
        stat = pathlib.Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Fields after the command name (which may hold spaces) start after the last ')'.
    fields = stat[stat.rfind(")") + 2:].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / TICKS


def loadavg() -> float:
    return float(pathlib.Path("/proc/loadavg").read_text().split()[0])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parent", type=int, required=True)
    parser.add_argument("--log", type=pathlib.Path, required=True)
    parser.add_argument("--out", type=pathlib.Path, required=True)
    parser.add_argument("--interval", type=float, default=0.2)
    args = parser.parse_args()

    target = None
    for _ in range(200):
        target = find_polybrief(args.parent)
        if target:
            break
        time.sleep(0.05)
    watched = target or args.parent
    offset = 0
    last_cpu = 0.0
    loads = []
    next_load = 0.0
    with open(args.out, "w", buffering=1) as out:
        while True:
            cpu = cpu_seconds(watched)
            alive = cpu is not None
            if alive:
                last_cpu = cpu
            now = time.time()
            if now >= next_load:
                loads.append(loadavg())
                next_load = now + 5
            try:
                with open(args.log, "rb") as f:
                    f.seek(offset)
                    data = f.read()
            except OSError:
                data = b""
            if data:
                complete = data.rfind(b"\n") + 1
                for line in data[:complete].decode("utf-8", "replace").splitlines():
                    out.write(json.dumps({"t": round(now, 2), "cpu": round(last_cpu, 2), "load": loads[-1],
                                          "line": line}) + "\n")
                offset += complete
            if not alive:
                out.write(json.dumps({"t": round(now, 2), "cpu": round(last_cpu, 2), "end": True,
                                      "load_samples": loads}) + "\n")
                return
            time.sleep(args.interval)


if __name__ == "__main__":
    main()
