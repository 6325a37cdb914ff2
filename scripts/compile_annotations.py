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


def _compiled_or_skipped(path: Path) -> list:
    """Documents of another source, or none (with a note) while it does not compile."""
    try:
        return compile_source(path)
    except AnnotationError as exc:
        print(f"note: {path} left out of the consistency check ({exc})")
        return []


def check(paths: list[str], root: Path) -> int:
    """Compile each file, print its counts or its first error, then the consistency findings
    (against the whole corpus under `root`) in its documents; exit status 1 on any error."""
    from edupair.corpus import check_consistency, normalize_document

    sources = {src.resolve(): _compiled_or_skipped(src) for src in sorted((root / "src").glob("*.txt"))}
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
        others = [d for src, found in sources.items() if src != Path(path).resolve() for d in found]
        mine = {d.id for d in docs}
        findings = check_consistency([normalize_document(d) for d in docs + others])
        for kind, items in (("ERROR", findings.errors), ("WARNING", findings.warnings)):
            for finding in items:
                if finding.doc_id in mine:
                    print(f"{kind} {finding}")
                    status = status or int(kind == "ERROR")
    return status


def build(root: Path, gazetteer_dir: Path, show_warnings: bool) -> int:
    """Compile all sources to train/dev/test, print statistics and findings; 1 on checker errors."""
    from edupair.corpus import build_corpus
    from edupair.regions import Gazetteer

    gazetteer = Gazetteer.from_folder(gazetteer_dir) if gazetteer_dir.exists() else None
    try:
        splits, findings, stats = build_corpus(root, gazetteer)
    except AnnotationError as exc:
        print(f"ERROR {exc}")
        return 1
    print(", ".join(f"{name} {len(part)}" for name, part in splits.items()))
    for key, value in stats.items():
        print(f"  {key}: {value}")
    for finding in findings.errors:
        print(f"ERROR {finding}")
    if show_warnings:
        for finding in findings.warnings:
            print(f"WARNING {finding}")
    print(f"{len(findings.errors)} errors, {len(findings.warnings)} warnings")
    return 1 if findings.errors else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", nargs="+", metavar="FILE", help="only compile these files and print counts")
    parser.add_argument("--root", default="data/annotations")
    parser.add_argument("--gazetteer", default="../shared/corpora/gazetteers/admin_divisions_cn")
    parser.add_argument("--show-warnings", action="store_true")
    args = parser.parse_args()
    if args.check:
        return check(args.check, Path(args.root))
    return build(Path(args.root), Path(args.gazetteer), args.show_warnings)


if __name__ == "__main__":
    sys.exit(main())
