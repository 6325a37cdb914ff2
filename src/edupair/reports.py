"""Evaluation reports an analyst can read: report.json and report.md (tables, worst documents)."""

from __future__ import annotations

import json
from pathlib import Path

from edupair.evaluation import Evaluation


def _table(title: str, scores: dict[str, dict]) -> str:
    """A markdown table of per-label scores with micro and macro rows."""
    lines = [f"### {title}", "", "| label | precision | recall | F1 | support |", "|---|---:|---:|---:|---:|"]
    for label, row in scores.items():
        name = f"**{label}**" if label in ("micro", "macro") else label
        lines.append(f"| {name} | {row['precision']:.3f} | {row['recall']:.3f} | {row['f1']:.3f} | {row['support']} |")
    return "\n".join(lines) + "\n"


def write_report(evaluation: Evaluation, out_dir: str | Path, title: str, worst: int = 20,
                 meta: dict | None = None) -> dict:
    """Write DIR/report.json and DIR/report.md; returns the JSON content."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    content = {**evaluation.to_dict(), **(meta or {})}
    (out / "report.json").write_text(json.dumps(content, ensure_ascii=False, indent=1), encoding="utf-8")
    ranked = sorted(evaluation.documents, key=lambda d: -d.count)[:worst]
    parts = [f"# {title}", "", f"Level: {evaluation.level}; documents: {len(evaluation.documents)}.", ""]
    parts += [f"- {k}: {v}" for k, v in (meta or {}).items()] + [""]
    parts += [_table("Entities", evaluation.entities), _table("Relations", evaluation.relations)]
    parts += [f"## The {len(ranked)} worst documents", ""]
    for doc in ranked:
        if not doc.count:
            break
        parts.append(f"### {doc.id} ({len(doc.misses)} missed, {len(doc.false_alarms)} false alarms)\n")
        parts += [f"- missed: {m}" for m in doc.misses]
        parts += [f"- false alarm: {f}" for f in doc.false_alarms]
        parts.append("")
    (out / "report.md").write_text("\n".join(parts), encoding="utf-8")
    return content
