"""Analyst facts from prediction records: canonical regions, school regions, document triples.

Adds to each record: `canonical` on REGION entities (full administrative name and code, or
`resolved: false`), `region` on SCHOOL entities (from the name's prefix, else the nearest
resolved region before it), and `doc_relations` (relations merged across mentions and aliases
by canonical ends, with the best score, a mention count and the evidence sentences).
"""

from __future__ import annotations

from edupair.regions import Division, Gazetteer
from edupair.text import split_sentences


def _canonical(gaz: Gazetteer, div: Division | None, mention: str) -> dict:
    if div is None:
        return {"name": None, "code": None, "resolved": False, "mention": mention}
    return {"name": gaz.full_name(div), "code": div.code, "resolved": True}


def _school_prefix(gaz: Gazetteer, school: str, context: list[str]) -> Division | None:
    """The division a school's name starts with (将乐县实验小学 → 将乐县), longest prefix first."""
    for cut in range(min(len(school) - 2, gaz.max_len), 1, -1):
        if school[:cut] in gaz.by_name:
            return gaz.resolve(school[:cut], context)
    return None


def add_regions(rec: dict, gaz: Gazetteer) -> None:
    """Canonical names and codes on REGION entities, a region on SCHOOL entities (in place)."""
    regions = [e for e in rec["entities"] if e["label"] == "REGION"]
    context = [e["text"] for e in regions]
    resolved: list[tuple[int, dict]] = []
    for ent in regions:
        ent["canonical"] = _canonical(gaz, gaz.resolve(ent["text"], context), ent["text"])
        if ent["canonical"]["resolved"]:
            resolved.append((ent["start"], ent["canonical"]))
    for ent in rec["entities"]:
        if ent["label"] != "SCHOOL":
            continue
        div = _school_prefix(gaz, ent["text"], context)
        if div is not None:
            ent["region"] = {**_canonical(gaz, div, ent["text"]), "from": "name"}
        else:
            before = [c for start, c in resolved if start < ent["start"]]
            ent["region"] = ({**before[-1], "from": "context"} if before
                             else {"name": None, "code": None, "resolved": False, "from": None})


def _end_key(ent: dict) -> str:
    """How an entity is named in document triples: canonical region name, else its text."""
    canon = ent.get("canonical")
    return canon["name"] if canon and canon.get("resolved") else ent["text"]


def doc_relations(rec: dict, text: str) -> list[dict]:
    """Relations merged by (canonical head, label, canonical tail), with evidence sentences."""
    by_id = {e["id"]: e for e in rec["entities"]}
    sentences = split_sentences(text)
    merged: dict[tuple[str, str, str], dict] = {}
    for rel in rec["relations"]:
        head, tail = by_id[rel["head_id"]], by_id[rel["tail_id"]]
        key_head, key_tail = _end_key(head), _end_key(tail)
        if rel["label"] == "paired_with" and key_tail < key_head:
            key_head, key_tail, head, tail = key_tail, key_head, tail, head
        key = (key_head, rel["label"], key_tail)
        fact = merged.setdefault(key, {"head": key_head, "head_label": head["label"], "label": rel["label"],
                                       "tail": key_tail, "tail_label": tail["label"], "score": 0.0,
                                       "mentions": 0, "evidence": []})
        fact["score"] = max(fact["score"], rel["score"])
        fact["mentions"] += 1
        lo, hi = min(head["start"], tail["start"]), max(head["end"], tail["end"])
        for start, end in sentences:
            if start <= hi and lo < end:
                sentence = text[start:end].strip()
                if sentence not in fact["evidence"]:
                    fact["evidence"].append(sentence)
    return sorted(merged.values(), key=lambda f: (-f["score"], f["head"], f["tail"]))


def add_facts(rec: dict, text: str, gaz: Gazetteer | None) -> dict:
    """A record with regions resolved (when a gazetteer is given) and its document triples."""
    if rec.get("error"):
        rec["doc_relations"] = []
        return rec
    if gaz is not None:
        add_regions(rec, gaz)
    rec["doc_relations"] = doc_relations(rec, text)
    return rec
