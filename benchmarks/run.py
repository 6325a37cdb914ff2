"""Benchmarks: quality and speed of the model against its baselines, in one run.

    python benchmarks/run.py --train [--threads 2] [--out benchmarks/RESULTS.md]
    python benchmarks/run.py --training runs/bench/training.json   # measure again, no retraining

With `--train` the run first trains the default config and the same config from a random-init
encoder (`model=random_init`), records the wall time and peak memory of each and measures those
two models; without it the shipped model is measured and the ablation is read from `--ablation`
if that folder exists. Systems: the model, the ablation (each as `Predictor` runs it on CPU:
int8 encoder) and the rule baseline. Quality on the test split (mention level) and
on ../shared/eval/*.jsonl (document level); predict throughput on this machine's CPU, the
ratio to a transformers token-classification pipeline on the same encoder, peak RSS, model
load time, and throughput at 1 KB / 10 KB / 100 KB documents.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
TRAINING_ROWS = ROOT / "runs" / "bench" / "training.json"  # what --train measured, for --training
sys.path.insert(0, str(ROOT / "src"))

from edupair.annotations import read_jsonl  # noqa: E402
from edupair.baseline import RuleBaseline  # noqa: E402
from edupair.evaluation import document_level, gold_page, mention_level, records_to_documents  # noqa: E402
from edupair.inference import Predictor  # noqa: E402
from edupair.regions import Gazetteer  # noqa: E402


def quality(system, test_docs, pages: dict[str, list]) -> dict:
    """Entity and relation scores on the test split and on each real-page gold file."""
    recs = system.predict_texts([(d.id, d.text) for d in test_docs])
    out = {"test": mention_level(test_docs, records_to_documents(recs, test_docs))}
    for name, gold in pages.items():
        out[name] = document_level(gold, system.predict_texts([(g.id, g.text) for g in gold]))
    return out


def timed(run, repeat: int) -> float:
    """Median wall seconds of `repeat` calls of run(): single one-second timings swing by 10 %."""
    walls = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        walls.append(time.perf_counter() - start)
    return statistics.median(walls)


def throughput(predictor: Predictor, texts: list[str], repeat: int = 5) -> dict:
    """Characters and documents per second of predict_texts over the texts (median of `repeat` passes)."""
    predictor.predict_texts([("warm", texts[0][:200])])
    wall = timed(lambda: predictor.predict_texts([(str(i), t) for i, t in enumerate(texts)]), repeat)
    chars = sum(map(len, texts))
    return {"chars_per_s": round(chars / wall), "docs_per_s": round(len(texts) / wall, 2), "seconds": round(wall, 2)}


def pipeline_peer(model_dir: str, texts: list[str], repeat: int = 5) -> dict:
    """A transformers token-classification pipeline on the same fine-tuned encoder (speed only, timed like
    `throughput`)."""
    from transformers import AutoTokenizer, BertConfig, BertForTokenClassification, pipeline

    from edupair.model import EduPairModel

    model, _ = EduPairModel.load(model_dir)
    config = BertConfig.from_pretrained(model_dir, num_labels=9)
    peer = BertForTokenClassification(config)
    peer.bert.load_state_dict(model.encoder.state_dict(), strict=False)
    tok = AutoTokenizer.from_pretrained(model_dir)
    pipe = pipeline("token-classification", model=peer.eval(), tokenizer=tok, device=-1,
                    aggregation_strategy="simple", stride=32)
    pipe(texts[0][:200])
    wall = timed(lambda: [pipe(t) for t in texts], repeat)
    return {"chars_per_s": round(sum(map(len, texts)) / wall), "seconds": round(wall, 2)}


def load_and_rss(model_dir: str, sample: Path) -> dict:
    """Model load time (time to first output) and peak RSS of a predict subprocess."""
    code = ("import time,resource,sys;t=time.perf_counter();sys.path.insert(0,'src');"
            "from edupair.inference import Predictor;p=Predictor(sys.argv[1],device='cpu');"
            "load=time.perf_counter()-t;p.predict_texts([('a',open(sys.argv[2]).read())]);"
            "first=time.perf_counter()-t;"
            "print(load,first,resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", code, model_dir, str(sample)], capture_output=True, text=True,
                         cwd=ROOT, check=True).stdout.split()
    return {"model_load_s": round(float(out[0]), 2), "first_output_s": round(float(out[1]), 2),
            "peak_rss_mb": round(int(out[2]) / 1024)}


def train_run(name: str, overrides: list[str], work: Path) -> dict:
    """Train one config in a child process: wall minutes, peak RSS of that process, best dev relation F1."""
    wrapper = ("import resource,subprocess,sys;r=subprocess.run(sys.argv[1:]).returncode;"
               "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss);sys.exit(r)")
    rel = work.relative_to(ROOT) if work.is_relative_to(ROOT) else work
    cmd = [sys.executable, "scripts/train.py", f"output_dir={rel / name}", f"work_dir={rel / (name + '_work')}",
           "resume=false", *overrides]
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", wrapper, *cmd], cwd=ROOT, check=True, capture_output=True,
                          text=True)
    minutes = (time.perf_counter() - start) / 60
    history = [json.loads(line) for line in (work / (name + "_work") / "metrics.jsonl").read_text().splitlines()]
    return {"command": "python " + " ".join(cmd[1:]), "minutes": round(minutes, 1),
            "peak_rss_gb": round(int(done.stdout.split()[-1]) / 1024 ** 2, 2), "epochs": len(history),
            "best_dev_relation_f1": max(h["relation_f1"] for h in history), "model": str(work / name)}


def rel(path: str) -> str:
    """A path relative to the repo root when it lies inside it."""
    p = Path(path)
    return str(p.relative_to(ROOT)) if p.is_absolute() and p.is_relative_to(ROOT) else str(p)


def scores_row(name: str, ev) -> str:
    e, r = ev.entities, ev.relations
    cells = [f"{e[k]['f1']:.3f}" for k in ("REGION", "SCHOOL", "PROGRAM", "NUMBER", "micro")]
    cells += [f"{r[k]['f1']:.3f}" for k in ("paired_with", "participates_in", "quantity", "micro")]
    return f"| {name} | " + " | ".join(cells) + " |"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="models/edupair-ie")
    parser.add_argument("--ablation", default="runs/ablation/model")
    parser.add_argument("--shared", default="../shared")
    parser.add_argument("--out", default="benchmarks/RESULTS.md")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--gpu-batch-size", type=int, default=64, help="predict batch size for the GPU row")
    parser.add_argument("--train", action="store_true", help="train the default config and the ablation first")
    parser.add_argument("--training", type=Path, default=None,
                        help="measure the two models of an earlier --train run, reading its training rows "
                             f"from this file (--train writes {rel(str(TRAINING_ROWS))})")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    training = {}
    if args.train:
        work = ROOT / "runs" / "bench"
        threads = f"trainer.threads={args.threads}"
        training["default config"] = train_run("default", [threads], work)
        training["random-init encoder (ablation)"] = train_run("ablation", ["model=random_init", threads], work)
        TRAINING_ROWS.write_text(json.dumps(training, indent=1), encoding="utf-8")
    elif args.training:
        training = json.loads(args.training.read_text(encoding="utf-8"))
    if training:
        args.ablation = training["random-init encoder (ablation)"]["model"]
        args.model = training["default config"]["model"]
    shared = Path(args.shared)
    test_docs = read_jsonl(ROOT / "data/annotations/test.jsonl")
    pages = {f.stem: [gold_page(json.loads(line)) for line in f.read_text(encoding="utf-8").splitlines() if line]
             for f in sorted((shared / "eval").glob("*.jsonl"))}
    systems = {"edupair model": Predictor(args.model, device="cpu")}
    if Path(args.ablation).exists():
        systems["same model, random-init encoder"] = Predictor(args.ablation, device="cpu")
    systems["rule baseline"] = RuleBaseline(Gazetteer.from_folder(shared / "corpora/gazetteers/admin_divisions_cn"))
    results = {name: quality(system, test_docs, pages) for name, system in systems.items()}

    model = systems["edupair model"]
    texts = [d.text for d in test_docs]
    speed = throughput(model, texts)
    speed_fp32 = throughput(Predictor(args.model, device="cpu", quantize=False), texts)
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    speed_gpu = (throughput(Predictor(args.model, device="cuda", batch_size=args.gpu_batch_size), texts * 10, repeat=3)
                 if gpu else None)
    peer = pipeline_peer(args.model, texts)
    block = "\n".join(texts)
    scaling = {}
    for size in (1_000, 10_000, 100_000):
        doc = (block * (size // len(block) + 1))[:size]
        scaling[f"{size // 1000} KB"] = throughput(model, [doc] * max(1, 100_000 // size // 10))
    sample = ROOT / "examples" / "sample.txt"
    memory = load_and_rss(args.model, sample)

    lines = [f"# Benchmarks ({datetime.date.today()})", "",
             f"Machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
             f"Python {platform.python_version()}, torch {torch.__version__}; "
             f"{f'GPU: {gpu}' if gpu else 'no GPU was lent for this run'}.", "",
             f"Command: `python benchmarks/run.py {' '.join(sys.argv[1:])}`", ""]
    if training:
        source = ([f"Rows read from `{rel(str(args.training))}`, written by the earlier `--train` run that trained "
                   "both models; this run measured them again.", ""] if args.training and not args.train else [])
        lines += ["## Training (CPU)", "", *source,
                  "| run | command | wall time | peak RSS | epochs | best dev relation F1 |",
                  "|---|---|---:|---:|---:|---:|"]
        lines += [f"| {k} | `{v['command']}` | {v['minutes']} min | {v['peak_rss_gb']} GB | {v['epochs']} | "
                  f"{v['best_dev_relation_f1']:.3f} |" for k, v in training.items()]
        lines += ["", f"Quality and speed rows below: the default config trained above (`{rel(args.model)}`; "
                  "`models/edupair-ie` ships a copy of it when its dev relation F1 is the better one) "
                  "and the ablation trained above.", ""]
    header = ("| system | REGION | SCHOOL | PROGRAM | NUMBER | entity micro | paired_with | participates_in | "
              "quantity | relation micro |\n|---|" + "---:|" * 9)
    for split in ["test", *pages]:
        level = "mention level, strict" if split == "test" else "document level, sets"
        lines += [f"## Quality: {split} ({level}), F1", "", header]
        lines += [scores_row(name, res[split]) for name, res in results.items()] + [""]
    lines += ["## Speed (CPU unless marked GPU)", "", "| measure | value |", "|---|---:|",
              f"| predict, test split ({len(texts)} docs; int8 encoder, the CPU default) | "
              f"{speed['chars_per_s']:,} chars/s, {speed['docs_per_s']} docs/s |",
              f"| predict with `quantize=false` (float32 encoder) | {speed_fp32['chars_per_s']:,} chars/s, "
              f"{speed_fp32['docs_per_s']} docs/s |",
              f"| transformers token-classification pipeline, same encoder | {peer['chars_per_s']:,} chars/s |",
              f"| ratio predict / pipeline | {speed['chars_per_s'] / max(peer['chars_per_s'], 1):.2f}x |",
              f"| model load (time to first output) | {memory['model_load_s']} s ({memory['first_output_s']} s) |",
              f"| peak RSS of a predict process | {memory['peak_rss_mb']} MB |"]
    lines += [f"| {k} documents | {v['chars_per_s']:,} chars/s |" for k, v in scaling.items()]
    lines += [f"| predict on the GPU ({gpu}, batch {args.gpu_batch_size}, test split x10) | "
              f"{speed_gpu['chars_per_s']:,} chars/s, {speed_gpu['docs_per_s']} docs/s |" if gpu else
              "| predict on a GPU | not measured (no CUDA device) |"]
    ratio = scaling["100 KB"]["chars_per_s"] / max(scaling["1 KB"]["chars_per_s"], 1)
    lines += [f"| 100 KB rate / 1 KB rate | {ratio:.2f} |", ""]
    Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    summary = {name: {split: ev.summary() for split, ev in res.items()} for name, res in results.items()}
    print(json.dumps({"quality": summary, "training": training, "speed": speed, "speed_fp32": speed_fp32,
                      "speed_gpu": speed_gpu, "peer": peer, "scaling": scaling,
                      **memory}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
