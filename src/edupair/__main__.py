"""Command line: `python -m edupair normalize|validate|convert ...`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edupair import formats
from edupair.annotations import check_file, read_jsonl, write_jsonl
from edupair.schema import ENTITY_LABELS, RELATION_LABELS
from edupair.text import normalize

READERS = {"jsonl": read_jsonl, "labelstudio": formats.read_labelstudio,
           "doccano": formats.read_doccano, "brat": formats.read_brat}
WRITERS = {"jsonl": write_jsonl, "labelstudio": formats.write_labelstudio,
           "doccano": formats.write_doccano, "brat": formats.write_brat}


def cmd_normalize(args: argparse.Namespace) -> int:
    """Print the normalized text of each file."""
    for path in args.files:
        raw = Path(path).read_text(encoding="utf-8", errors="replace")
        if len(args.files) > 1:
            print(f"==> {path} <==")
        print(normalize(raw).text)
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    """Print counts per label and every error of each annotation file; 1 if any error."""
    failed = False
    totals = {"documents": 0, "characters": 0}
    for path in args.files:
        report = check_file(path)
        totals["documents"] += report.documents
        totals["characters"] += report.characters
        print(f"{path}: {report.documents} documents, {report.characters} characters")
        for label in ENTITY_LABELS:
            print(f"  entity   {label:<16}{report.entity_counts[label]:>7}")
        for label in RELATION_LABELS:
            print(f"  relation {label:<16}{report.relation_counts[label]:>7}")
        for error in report.errors:
            print(f"  ERROR {error}")
        failed = failed or bool(report.errors)
    if len(args.files) > 1:
        print(f"total: {totals['documents']} documents, {totals['characters']} characters")
    return 1 if failed else 0


def cmd_convert(args: argparse.Namespace) -> int:
    """Convert annotations between jsonl, labelstudio, doccano and brat."""
    docs = READERS[args.src_format](args.src)
    WRITERS[args.dst_format](docs, args.dst)
    print(f"wrote {len(docs)} documents to {args.dst} ({args.dst_format})")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edupair", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("normalize", help="print normalized text of raw files")
    p.add_argument("files", nargs="+")
    p.set_defaults(func=cmd_normalize)
    p = sub.add_parser("validate", help="check annotation JSONL files against the guide")
    p.add_argument("files", nargs="+")
    p.set_defaults(func=cmd_validate)
    p = sub.add_parser("convert", help="convert annotation formats")
    p.add_argument("src")
    p.add_argument("dst")
    p.add_argument("--from", dest="src_format", choices=sorted(READERS), default="jsonl")
    p.add_argument("--to", dest="dst_format", choices=sorted(WRITERS), required=True)
    p.set_defaults(func=cmd_convert)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
