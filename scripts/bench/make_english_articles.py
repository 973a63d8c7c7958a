#!/usr/bin/env python3
"""Writes N generated English news articles (plain text, one file each) for run-scale
benchmarks: STORIES events of a few kinds in many towns, each reported by 2-4 outlets with
their own wording and figures, so grouping, key points and disagreements do real work.
Deterministic for a given --seed.

    scripts/bench/make_english_articles.py OUT_DIR [--articles 3000] [--seed 7]
"""
import argparse
import random
from pathlib import Path

# Town names from two parts, so every story happens in a town of its own (1,600 names).
PREFIXES = [
    "Ash", "Oak", "Elm", "Pine", "Cedar", "Maple", "Birch", "Willow", "Stone", "River",
    "Lake", "Brook", "Fair", "Green", "High", "Low", "North", "South", "East", "West",
    "Red", "White", "Black", "Silver", "Gold", "Iron", "Salt", "Mill", "King", "Queen",
    "Bay", "Harbor", "Cliff", "Glen", "Moor", "Wood", "Field", "Spring", "Frost", "Sun",
]
SUFFIXES = [
    "ford", "dale", "ton", "field", "haven", "port", "bridge", "view", "wick", "bury",
    "stead", "mouth", "cross", "gate", "ridge", "wood", "ham", "ley", "worth", "mere",
    "brook", "crest", "fall", "holm", "by", "thorpe", "combe", "hurst", "well", "stow",
    "minster", "water", "side", "moor", "land", "croft", "shaw", "ness", "grove", "vale",
]
TOWNS = [p + s for p in PREFIXES for s in SUFFIXES]
KINDS = [
    ("storm", "A storm hit {town} on {day}, cutting power to {n} homes.",
     "Crews worked through the night to restore electricity in {town}.",
     "Officials said {m} roads were closed by fallen trees."),
    ("strike", "About {n} {workers} in {town} walked out on {day} over pay.",
     "The union said the strike in {town} would last {k} days.",
     "Managers said talks could resume after the weekend."),
    ("tram", "A new tram line opened in {town} on {day}, carrying {n} passengers.",
     "The line links the station with {m} new stops across {town}.",
     "The city said the project cost {k} million dollars."),
    ("flood", "Flooding in {town} forced {n} residents from their homes on {day}.",
     "The river rose {k} metres above its usual level near {town}.",
     "Emergency shelters opened in {m} schools."),
    ("fire", "A fire at a warehouse in {town} burned for {k} hours on {day}.",
     "Firefighters said {n} people were evacuated from nearby streets.",
     "Investigators have not yet named a cause for the fire in {town}."),
]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
WORKERS = ["nurses", "dock workers", "teachers", "bus drivers", "postal workers"]
OUTLETS = ["Herald", "Courier", "Gazette", "Post", "Tribune", "Chronicle", "Observer"]
FILLER = [
    "Residents described the scene to reporters.",
    "Local businesses said they expected a slow week.",
    "The mayor is expected to speak on the matter later.",
    "Neighbouring towns offered help.",
    "More details are expected in the coming days.",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--articles", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    towns = TOWNS[:]
    rng.shuffle(towns)
    args.out.mkdir(parents=True, exist_ok=True)
    written = 0
    story = 0
    while written < args.articles:
        kind, lead, second, third = KINDS[story % len(KINDS)]
        town = towns[story % len(towns)]
        facts = dict(
            town=town, day=rng.choice(DAYS), n=rng.randrange(200, 20000),
            m=rng.randrange(2, 40), k=rng.randrange(2, 12), workers=rng.choice(WORKERS),
        )
        for source in range(min(rng.randrange(2, 5), args.articles - written)):
            own = dict(facts)
            if rng.random() < 0.3:
                own["n"] = facts["n"] + rng.randrange(1, 500)  # an outlet with another figure
            outlet = OUTLETS[(story + source) % len(OUTLETS)]
            body = [lead.format(**own), second.format(**own), third.format(**own)]
            body += rng.sample(FILLER, 2)
            rng.shuffle(body[1:])
            title = f"{kind.title()} in {town}"
            text = f"---\ntitle: {title}\nsource: {town} {outlet}\n---\n" + "\n\n".join(
                " ".join(body[i:i + 2]) for i in range(0, len(body), 2)
            ) + "\n"
            (args.out / f"{story:05d}-{source}.txt").write_text(text, encoding="utf-8")
            written += 1
        story += 1
    print(f"wrote {written} articles about {story} stories to {args.out}")


if __name__ == "__main__":
    main()
