"""Compile authoring sources (data/annotations/src/*.txt) to the guide's JSONL.

`--check FILE...` only compiles and prints counts (for annotators checking a batch);
without it, all sources are compiled and split into train/dev/test (see edupair.corpus).
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

from edupair.annotations import AnnotationError
from edupair.authoring import compile_source


def check(paths: list[str]) -> int:
    """Compile each file, print its counts or its first error; exit status 1 on any error."""
    status = 0
    for path in paths:
        try:
            docs = compile_source(path)
        except AnnotationError as exc:
            print(f"ERROR {exc}")
            status = 1
            continue
        ents = Counter(e.label for d in docs for e in d.entities)
        rels = Counter(r.label for d in docs for r in d.relations)
        chars = sum(len(d.text) for d in docs)
        print(f"{path}: {len(docs)} docs, {chars} chars, entities {dict(ents)}, relations {dict(rels)}")
    return status


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", nargs="+", metavar="FILE", help="only compile these files and print counts")
    args = parser.parse_args()
    if args.check:
        return check(args.check)
    from edupair.corpus import build_corpus

    build_corpus(Path("data/annotations"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
