"""Batch prediction job: inputs → Predictor → one record per document, in input order.

Records are appended to `OUTPUT.partial` chunk by chunk (so a killed run can `resume`) and the
finished file is renamed into place. Under `accelerate launch` each process takes every N-th
document and the main process merges the shards in input order.
"""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

from accelerate import PartialState
from tqdm.auto import tqdm

from edupair import formats
from edupair.facts import add_facts
from edupair.inference import Predictor, error_record, record_to_document
from edupair.inputs import InputDoc, iter_inputs
from edupair.regions import Gazetteer
from edupair.text import normalize


def _done_ids(partial: Path) -> list[str]:
    """Ids already written to a partial file (a torn last line is dropped)."""
    if not partial.exists():
        return []
    good, ids = [], []
    with open(partial, encoding="utf-8") as handle:
        for line in handle:
            try:
                ids.append(json.loads(line)["id"])
                good.append(line)
            except (json.JSONDecodeError, KeyError):
                break
    partial.write_text("".join(good), encoding="utf-8")
    return ids


def _predict_chunk(predictor: Predictor, chunk: list[InputDoc], facts: Facts | None = None) -> list[dict]:
    """Records for a chunk: unreadable inputs get their error record, the rest are predicted
    (and, with `facts`, get canonical regions and document triples)."""
    readable = [d for d in chunk if d.error is None]
    predicted = iter(predictor.predict_with_texts([(d.id, d.text) for d in readable]))
    out = []
    for doc in chunk:
        rec, text = (error_record(doc.id, _InputError(*doc.error)), "") if doc.error else next(predicted)
        if doc.encoding:
            rec["encoding"] = doc.encoding
        if doc.input_format:
            rec["input_format"] = doc.input_format
        if facts is not None:
            add_facts(rec, text, facts.gazetteer)
        out.append(rec)
    return out


class Facts:
    """Settings of the analyst-facts step: the gazetteer (None: no region resolution)."""

    def __init__(self, gazetteer_dir: str | None) -> None:
        self.gazetteer = (Gazetteer.from_folder(gazetteer_dir)
                          if gazetteer_dir and Path(gazetteer_dir).exists() else None)


class _InputError(Exception):
    """An input that could not be read, carried into its error record."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def run_prediction(input_path: str, output: str, model: str, batch_size: int = 16, device: str = "auto",
                   fmt: str = "jsonl", threshold: float | None = None, chunk_docs: int = 64,
                   resume: bool = False, facts: bool = False, gazetteer: str | None = None,
                   relation_threshold: float | None = None, quantize: bool | str = "auto") -> dict:
    """Predict every input document and write the output; returns counts."""
    state = PartialState()
    if not Path(model).exists():
        raise FileNotFoundError(f"model folder not found: {model}")
    out = Path(output)
    out_dir = out if fmt == "brat" else out.parent
    out_dir.mkdir(parents=True, exist_ok=True)
    if not os.access(out_dir, os.W_OK):
        raise PermissionError(f"output folder is not writable: {out_dir}")
    predictor = Predictor(model, device=device, batch_size=batch_size, threshold=threshold,
                          relation_threshold=relation_threshold, quantize=quantize)
    try:
        return _run(predictor, state, input_path, out, fmt, chunk_docs, resume, Facts(gazetteer) if facts else None)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise OSError(exc.errno, f"no space left on the device while writing {out}") from exc
        raise


def _run(predictor: Predictor, state: PartialState, input_path: str, out: Path, fmt: str, chunk_docs: int,
         resume: bool, facts: Facts | None) -> dict:
    """Predict this process's share of the inputs into its partial file; the main process merges."""
    docs = list(iter_inputs(input_path))
    mine = [d for i, d in enumerate(docs) if i % state.num_processes == state.process_index]
    stem = out.with_name(out.name + (f".part{state.process_index}" if state.num_processes > 1 else ""))
    partial = stem.with_name(stem.name + ".partial")
    done = set(_done_ids(partial)) if resume else set()
    if not resume and partial.exists():
        partial.unlink()
    todo = [d for d in mine if d.id not in done]
    bar = tqdm(total=len(mine), initial=len(mine) - len(todo), desc="predict", unit="doc",
               disable=not state.is_local_main_process)
    with open(partial, "a", encoding="utf-8") as handle:
        for i in range(0, len(todo), chunk_docs):
            chunk = todo[i:i + chunk_docs]
            for rec in _predict_chunk(predictor, chunk, facts):
                handle.write(json.dumps(rec, ensure_ascii=False) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
            bar.update(len(chunk))
    bar.close()
    state.wait_for_everyone()
    if not state.is_main_process:
        return {}
    parts = ([partial] if state.num_processes == 1 else
             [out.with_name(f"{out.name}.part{r}.partial") for r in range(state.num_processes)])
    by_id: dict[str, dict] = {}
    for part in parts:
        with open(part, encoding="utf-8") as handle:
            for line in handle:
                rec = json.loads(line)
                by_id.setdefault(rec["id"], rec)
    records = [by_id[d.id] for d in docs]
    _write_output(records, docs, out, fmt)
    for part in parts:
        part.unlink()
    errors = sum(1 for r in records if r["error"])
    return {"documents": len(records), "errors": errors, "output": str(out)}


def _write_output(records: list[dict], docs: list[InputDoc], out: Path, fmt: str) -> None:
    """Write the merged records atomically in the requested format."""
    if fmt == "jsonl":
        tmp = out.with_name(out.name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as handle:
            for rec in records:
                handle.write(json.dumps(rec, ensure_ascii=False) + "\n")
        os.replace(tmp, out)
        return
    texts = {d.id: (normalize(d.text).text if d.error is None else "") for d in docs}
    documents = [record_to_document(r, texts[r["id"]]) for r in records]
    if fmt == "labelstudio":
        tasks = [formats.to_labelstudio(doc, {e["id"]: e["score"] for e in r["entities"]})
                 for doc, r in zip(documents, records, strict=True)]
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text(json.dumps(tasks, ensure_ascii=False, indent=1), encoding="utf-8")
        os.replace(tmp, out)
    elif fmt == "brat":
        formats.write_brat(documents, out)
    else:
        raise ValueError(f"unknown format '{fmt}' (expected jsonl, labelstudio or brat)")
