"""The `python -m edupair` command line."""

from __future__ import annotations

import json

from edupair.__main__ import main
from edupair.annotations import write_jsonl


def test_normalize_prints(tmp_path, capsys):
    page = tmp_path / "p.txt"
    page.write_text("溫江區(qū)與巴南區結對", encoding="utf-8")
    assert main(["normalize", str(page)]) == 0
    assert capsys.readouterr().out == "温江区与巴南区结对\n"


def test_validate_ok_and_errors(tmp_path, capsys, docs):
    good = tmp_path / "good.jsonl"
    write_jsonl(docs, good)
    assert main(["validate", str(good)]) == 0
    out = capsys.readouterr().out
    assert "3 documents" in out and "entity   REGION" in out and "ERROR" not in out
    bad = tmp_path / "bad.jsonl"
    obj = docs[0].to_dict()
    obj["entities"][0]["label"] = "CITY"
    bad.write_text(json.dumps(obj, ensure_ascii=False) + "\n", encoding="utf-8")
    assert main(["validate", str(bad)]) == 1
    assert f"ERROR {bad}:1: entity T1: unknown label 'CITY'" in capsys.readouterr().out


def test_convert(tmp_path, docs):
    src = tmp_path / "a.jsonl"
    write_jsonl(docs, src)
    assert main(["convert", str(src), str(tmp_path / "b"), "--to", "brat"]) == 0
    assert (tmp_path / "b" / "fx-1.ann").exists()
