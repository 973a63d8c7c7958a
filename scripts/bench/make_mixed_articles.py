#!/usr/bin/env python3
"""Writes a morning's mixed-language articles for the end-to-end benchmark (scripts/bench/e2e.sh):
the English ones from make_english_articles.py (events reported by 2-4 outlets), the others
6-10 sentences each drawn from scripts/acceptance/corpus/LANG.txt (news sentences written for
the project), in paragraphs of up to three. Deterministic for a given --seed.

    scripts/bench/make_mixed_articles.py OUT_DIR [--articles 100] [--foreign de:15,vi:10,ko:10,zh:5]
"""
import argparse
import random
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
CORPUS = HERE.parent / "acceptance" / "corpus"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--articles", type=int, default=100)
    parser.add_argument("--foreign", default="de:15,vi:10,ko:10,zh:5",
                        help="LANG:COUNT,... of the articles; the rest are English")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    foreign = {lang: int(n) for lang, n in (p.split(":") for p in args.foreign.split(","))}
    english = args.articles - sum(foreign.values())
    if english < 0:
        raise SystemExit("more foreign articles than --articles")
    args.out.mkdir(parents=True, exist_ok=True)
    if english:
        subprocess.run([sys.executable, str(HERE / "make_english_articles.py"), str(args.out),
                        "--articles", str(english), "--seed", str(args.seed)], check=True, stdout=sys.stderr)
    rng = random.Random(args.seed)
    for lang, count in foreign.items():
        lines = [l.strip() for l in (CORPUS / f"{lang}.txt").read_text(encoding="utf-8").splitlines() if l.strip()]
        for i in range(count):
            sentences = rng.sample(lines, min(len(lines), rng.randint(6, 10)))
            paragraphs = [" ".join(sentences[j:j + 3]) for j in range(0, len(sentences), 3)]
            (args.out / f"{lang}-{i:03d}.txt").write_text("\n\n".join(paragraphs) + "\n", encoding="utf-8")
    print(f"wrote {english} English and {sum(foreign.values())} other articles ({args.foreign}) to {args.out}",
          file=sys.stderr)


if __name__ == "__main__":
    main()
