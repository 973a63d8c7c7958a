#!/usr/bin/env python3
"""Grouping precision and recall of a brief over articles written by make_english_articles.py,
whose file names say which event each reports (`00042-1.txt`: event 42, outlet 1):

    scripts/bench/grouping_truth.py BRIEF.json

Pairs of sources in one story of the brief against pairs of one event. Identical texts are
one source (the brief lists the others under it), so pairs are counted over the sources listed.
Sources in no story (uncited) count as alone.
"""
import itertools
import json
import sys
from pathlib import Path

brief = json.loads(Path(sys.argv[1]).read_text())
event = {s["number"]: Path(s["origin"]).name.split("-")[0] for s in brief["sources"]}
predicted = set()
for story in brief["stories"]:
    predicted.update(itertools.combinations(sorted(story["sources"]), 2))
truth = set()
by_event = {}
for number, e in event.items():
    by_event.setdefault(e, []).append(number)
for members in by_event.values():
    truth.update(itertools.combinations(sorted(members), 2))
both = len(predicted & truth)
print(f"stories in the brief: {len(brief['stories'])}; events: {len(by_event)}")
print(f"grouping pairwise precision {both / max(len(predicted), 1):.3f} ({both}/{len(predicted)}), "
      f"recall {both / max(len(truth), 1):.3f} ({both}/{len(truth)})")
