"""Bad input, faults and resume: nothing lost, clear errors."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edupair import batch
from edupair.batch import run_prediction
from edupair.inference import Predictor
from edupair.inputs import html_to_text, iter_inputs

from .conftest import ENCODER, ROOT, needs_encoder

TEXT = "成都市溫江區與重慶市巴南區結對，兩地學校開展交流。"


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_encodings_detected(tmp_path):
    simplified = "温江区与巴南区结对，两地学校开展交流合作。" * 3
    files = {"gbk": simplified.encode("gbk"),
             "gb18030": TEXT.encode("gb18030"), "big5": (TEXT * 3).encode("big5"),
             "utf16": TEXT.encode("utf-16"), "utf8": TEXT.encode("utf-8")}
    for name, data in files.items():
        write(tmp_path / f"{name}.txt", data)
    docs = {d.id: d for d in iter_inputs(str(tmp_path))}
    assert docs["utf8"].encoding == "utf-8" and docs["utf8"].text == TEXT
    assert docs["gb18030"].encoding == "gb18030" and docs["gb18030"].text == TEXT
    assert docs["utf16"].encoding.startswith("utf") and docs["utf16"].text == TEXT
    assert docs["big5"].encoding in {"big5", "cp950", "big5hkscs"} and docs["big5"].text == TEXT * 3
    assert docs["gbk"].text == simplified and docs["gbk"].encoding in {"gbk", "gb18030", "gb2312"}


def test_invalid_utf8_and_binary(tmp_path):
    write(tmp_path / "bad.txt", "巴南区".encode() + b"\xff\xfe\xfa" + "结对".encode())
    write(tmp_path / "bin.txt", b"\x89PNG\x00\x00\x00\x0dIHDR" * 50)
    docs = {d.id: d for d in iter_inputs(str(tmp_path))}
    assert docs["bad"].error is None and "结对" in docs["bad"].text
    assert docs["bin"].error[0] == "BinaryFile"


def test_folder_with_symlink_loop_and_dangling_link(tmp_path):
    write(tmp_path / "a" / "x.txt", TEXT.encode())
    (tmp_path / "a" / "loop").symlink_to(tmp_path / "a")
    (tmp_path / "a" / "gone.txt").symlink_to(tmp_path / "missing.txt")
    docs = list(iter_inputs(str(tmp_path)))
    assert [d.id for d in docs] == ["a/gone", "a/x"]
    assert docs[0].error[0] == "FileNotFoundError" and docs[1].error is None


def test_jsonl_faults(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text('{"id": "a", "text": "x"}\n[1]\n{"text": "no id"}\n{"id": "a", "text": "dup"}\n'
                   '{"id": "n", "text": 5}\nnot json\n', encoding="utf-8")
    kinds = [(d.id, d.error[0] if d.error else None) for d in iter_inputs(str(src))]
    assert kinds == [("a", None), ("in:2", "InvalidRecord"), ("in:3", "MissingId"), ("a", "DuplicateId"),
                     ("n", "InvalidText"), ("in:6", "InvalidJSON")]


def test_html_text_extracted():
    page = ("<html><head><style>p{}</style><script>var a=1;</script></head>"
            "<body><div>温江区</div><p>与巴南区结对</p></body></html>")
    text = html_to_text(page)
    assert "var a" not in text and "p{}" not in text
    assert [line for line in text.split("\n") if line] == ["温江区", "与巴南区结对"]


@needs_encoder
def test_every_input_class_gets_one_record(tmp_path, tiny_model):
    folder = tmp_path / "in"
    write(folder / "01_empty.txt", b"")
    write(folder / "02_space.txt", b" \n\t\n\xe3\x80\x80")
    write(folder / "03_emoji.txt", "🙂温江区🚀与 Hartley School 结对\x00\x07\x1b 😀".encode())
    write(folder / "04_long_line.txt", ("温江区与巴南区结对" * 3000).encode())
    write(folder / "05_gbk.txt", ("温江区与巴南区结对，两地学校开展交流合作。" * 3).encode("gbk"))
    write(folder / "06_page.html", "<p>温江区与巴南区结对</p>".encode())
    write(folder / "07_binary.txt", b"\x00\x01\x02" * 100)
    out = tmp_path / "out.jsonl"
    result = run_prediction(str(folder), str(out), str(tiny_model), batch_size=8, device="cpu", threshold=3.0)
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert result["documents"] == 7 == len(records)
    assert [r["id"] for r in records] == ["01_empty", "02_space", "03_emoji", "04_long_line", "05_gbk",
                                          "06_page", "07_binary"]
    assert records[0]["entities"] == [] and records[0]["error"] is None
    assert records[4]["encoding"] in {"gbk", "gb18030", "gb2312"}
    assert records[5]["input_format"] == "html"
    assert records[6]["error"]["type"] == "BinaryFile"
    for rec in records[:6]:
        assert rec["error"] is None


@needs_encoder
def test_one_megabyte_document(tmp_path, tiny_model):
    predictor = Predictor(str(tiny_model), device="cpu", batch_size=64, threshold=50.0)
    (rec,) = predictor.predict_texts([("big", "温江区与巴南区结对，两地学校开展交流。\n" * 52_000)])
    assert rec["error"] is None and rec["id"] == "big"


@needs_encoder
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.text(max_size=80), min_size=1, max_size=4))
def test_predict_never_raises(tiny_model, texts):
    predictor = _cached_predictor(tiny_model)
    records = predictor.predict_texts([(str(i), t) for i, t in enumerate(texts)])
    assert [r["id"] for r in records] == [str(i) for i in range(len(texts))]
    for rec, text in zip(records, texts, strict=True):
        assert rec["error"] is None
        for ent in rec["entities"]:
            assert text[ent["raw_start"]:ent["raw_end"]] == ent["raw_text"]


_PREDICTORS: dict[str, Predictor] = {}


def _cached_predictor(folder: Path) -> Predictor:
    if str(folder) not in _PREDICTORS:
        _PREDICTORS[str(folder)] = Predictor(str(folder), device="cpu", threshold=1.0)
    return _PREDICTORS[str(folder)]


@needs_encoder
def test_prediction_resume_completes_partial_output(tmp_path, tiny_model):
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"id": f"d{i}", "text": TEXT}, ensure_ascii=False) + "\n" for i in range(5)),
                   encoding="utf-8")
    out = tmp_path / "out.jsonl"
    run_prediction(str(src), str(out), str(tiny_model), device="cpu", threshold=3.0)
    full = out.read_text(encoding="utf-8").splitlines()
    # a run killed after two records and half of a third
    partial = out.with_name(out.name + ".partial")
    partial.write_text(full[0] + "\n" + full[1] + "\n" + full[2][:20], encoding="utf-8")
    out.unlink()
    run_prediction(str(src), str(out), str(tiny_model), device="cpu", threshold=3.0, chunk_docs=1, resume=True)
    assert out.read_text(encoding="utf-8").splitlines() == full
    assert not partial.exists()


@needs_encoder
def test_out_of_disk_is_one_clear_error(tmp_path, tiny_model, monkeypatch):
    src = tmp_path / "a.txt"
    src.write_text(TEXT, encoding="utf-8")

    def full_disk(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(batch.os, "fsync", full_disk)
    with pytest.raises(OSError, match="no space left on the device while writing"):
        run_prediction(str(src), str(tmp_path / "out.jsonl"), str(tiny_model), device="cpu")
    assert not (tmp_path / "out.jsonl").exists()


@needs_encoder
def test_model_from_another_label_set(tmp_path, tiny_model):
    import shutil

    other = tmp_path / "other"
    shutil.copytree(tiny_model, other)
    meta = json.loads((other / "edupair_config.json").read_text(encoding="utf-8"))
    meta["entity_labels"] = ["PER", "ORG", "LOC", "MISC"]
    (other / "edupair_config.json").write_text(json.dumps(meta), encoding="utf-8")
    with pytest.raises(ValueError, match="was trained for labels"):
        Predictor(str(other), device="cpu")


def _predict_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "predict.py"), *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=300)


@needs_encoder
def test_cli_errors_are_one_line(tmp_path, tiny_model):
    src = tmp_path / "a.txt"
    src.write_text(TEXT, encoding="utf-8")
    cases = {
        "missing model": (f"model={tmp_path / 'nope'}", f"output={tmp_path / 'o.jsonl'}"),
        "read-only output": (f"model={tiny_model}", "output=/proc/edupair/o.jsonl"),
        "missing input": (f"model={tiny_model}", f"output={tmp_path / 'o.jsonl'}"),
    }
    for name, (model_arg, out_arg) in cases.items():
        inp = f"input={tmp_path / 'none.txt'}" if name == "missing input" else f"input={src}"
        proc = _predict_cli(inp, out_arg, model_arg)
        assert proc.returncode == 1, name
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (name, proc.stderr)


def _train_cli(tmp_path: Path, work: str, *extra: str) -> subprocess.CompletedProcess:
    """scripts/train.py on the tiny config and the fixture data under `tmp_path`."""
    data = tmp_path / "data"
    args = ["model=tiny", f"model.encoder={ENCODER}", f"data.train={data / 'train.jsonl'}",
            f"data.dev={data / 'dev.jsonl'}", "data.gazetteer=null", "trainer.epochs=3", "trainer.batch_size=4",
            "trainer.threads=1", "augment.p_traditional=0.5", f"output_dir={tmp_path / work / 'model'}",
            f"work_dir={tmp_path / work}", *extra]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "train.py"), *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=600, env=env)


@needs_encoder
def test_sigkill_mid_epoch_resumes_to_same_metrics(tmp_path):
    from .conftest import tiny_cfg

    tiny_cfg(tmp_path)  # writes the fixture train/dev files
    straight = _train_cli(tmp_path, "straight")
    assert straight.returncode == 0, straight.stderr[-2000:]
    killed = _train_cli(tmp_path, "killed", "trainer.debug_kill_at_step=3")
    assert killed.returncode == -9
    resumed = _train_cli(tmp_path, "killed")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resumed after epoch 1" in resumed.stdout

    def history(work: str) -> list[dict]:
        lines = (tmp_path / work / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines]

    a, b = history("straight"), history("killed")
    assert [h["epoch"] for h in b] == [1, 2, 3]
    assert abs(a[-1]["relation_f1"] - b[-1]["relation_f1"]) <= 0.005
    assert abs(a[-1]["entity_f1"] - b[-1]["entity_f1"]) <= 0.005
    assert abs(a[-1]["loss"] - b[-1]["loss"]) < 1e-3
