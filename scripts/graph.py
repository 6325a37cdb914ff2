"""Pairing network and HTML report of a prediction run.

    python scripts/graph.py --pred predictions.jsonl --input INPUT --out report/

INPUT is what predict read (file, folder or JSONL), used to show each document's text.
Writes edges.csv, graph.graphml, graph.png and report.html.
"""

from __future__ import annotations

import argparse
import json
import sys

from edupair.corpus_view import write_corpus_view
from edupair.inputs import iter_inputs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pred", required=True, help="predictions JSONL (predict with facts=true)")
    parser.add_argument("--input", required=True, help="the input predict read")
    parser.add_argument("--out", default="report")
    args = parser.parse_args()
    try:
        with open(args.pred, encoding="utf-8") as handle:
            records = [json.loads(line) for line in handle if line.strip()]
        texts = {doc.id: doc.text for doc in iter_inputs(args.input)}
        print(json.dumps(write_corpus_view(records, texts, args.out)))
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
