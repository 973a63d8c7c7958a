#!/usr/bin/env python3
"""Writes a synthetic English news article of about SIZE megabytes (10^6 bytes; default 1) to stdout:
varied sentences in paragraphs, deterministic (seeded), for the scale benchmark in
scripts/bench/README.md.  Usage: make_article.py [SIZE_MB] > article.txt"""
import random
import sys

size = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
rng = random.Random(11)
places = ["Oakdale", "Riverton", "Port Ellis", "Hillcrest", "Brookfield", "Westmere", "Lakeside", "Northgate"]
subjects = ["The city council", "A spokesperson for the transit agency", "The regional health board",
            "Local residents", "The mayor", "Engineers from the utility", "Police", "The school district"]
verbs = ["said", "announced", "confirmed", "reported", "warned", "estimated", "explained", "argued"]
objects = ["the new tram line", "the flood defences", "the budget for next year", "the hospital extension",
           "the bridge repairs", "the water supply", "the housing plan", "the bus timetable"]
tails = ["would open on Monday", "had cost more than expected", "was delayed by the storm",
         "needed another review", "carried {n} passengers on its first day", "served {n} households",
         "would be finished by {year}", "drew {n} comments from the public"]

out = []
written = 0
target = int(size * 1_000_000)
print("Oakdale transit and city report")
print()
while written < target:
    paragraph = []
    for _ in range(rng.randint(3, 6)):
        tail = rng.choice(tails).format(n=rng.randint(100, 99999), year=rng.randint(2026, 2035))
        sentence = f"{rng.choice(subjects)} in {rng.choice(places)} {rng.choice(verbs)} that {rng.choice(objects)} {tail}."
        paragraph.append(sentence)
    text = " ".join(paragraph)
    print(text)
    print()
    written += len(text) + 2
