"""The label contract of ANNOTATION_GUIDE.md v1.2: entity types, relation types and their ends."""

from __future__ import annotations

ENTITY_LABELS: tuple[str, ...] = ("REGION", "SCHOOL", "PROGRAM", "NUMBER")
RELATION_LABELS: tuple[str, ...] = ("paired_with", "participates_in", "quantity")

# (head label, tail label) pairs the guide allows for each relation.
RELATION_ENDS: dict[str, frozenset[tuple[str, str]]] = {
    "paired_with": frozenset({("REGION", "REGION"), ("SCHOOL", "SCHOOL")}),
    "participates_in": frozenset({("REGION", "PROGRAM"), ("SCHOOL", "PROGRAM")}),
    "quantity": frozenset({("REGION", "NUMBER"), ("SCHOOL", "NUMBER"), ("PROGRAM", "NUMBER")}),
}

# Relations whose direction carries no meaning (compared without order in evaluation).
SYMMETRIC_RELATIONS: frozenset[str] = frozenset({"paired_with"})
