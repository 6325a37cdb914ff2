"""Corpus view of a prediction file: the pairing network (CSV, GraphML, PNG) and an HTML report.

Nodes are canonical regions, schools and programs; `paired_with` links regions or schools,
`participates_in` links a party to a program. Edge weight = number of documents stating it.
"""

from __future__ import annotations

import csv
import html
from collections import Counter, defaultdict
from pathlib import Path

import networkx as nx

from edupair.text import normalize

COLOURS = {"REGION": "#ffd48a", "SCHOOL": "#9fd3ff", "PROGRAM": "#b9f0b0", "NUMBER": "#f5b3d0"}


def build_graph(records: list[dict]) -> nx.Graph:
    """The network of `paired_with` and `participates_in` document triples."""
    graph = nx.Graph()
    docs: dict[tuple, set] = defaultdict(set)
    for rec in records:
        for fact in rec.get("doc_relations", []):
            if fact["label"] == "quantity":
                continue
            for name, label in ((fact["head"], fact["head_label"]), (fact["tail"], fact["tail_label"])):
                graph.add_node(name, label=label)
            key = (fact["head"], fact["tail"], fact["label"])
            docs[key].add(rec["id"])
            old = graph.get_edge_data(fact["head"], fact["tail"], {}).get("score", 0.0)
            graph.add_edge(fact["head"], fact["tail"], label=fact["label"], weight=len(docs[key]),
                           score=max(fact["score"], old), documents=" ".join(sorted(docs[key])))
    return graph


def write_edges(graph: nx.Graph, path: Path) -> None:
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["source", "source_label", "target", "target_label", "relation", "documents", "score",
                         "doc_ids"])
        for a, b, data in sorted(graph.edges(data=True), key=lambda e: -e[2]["weight"]):
            writer.writerow([a, graph.nodes[a]["label"], b, graph.nodes[b]["label"], data["label"], data["weight"],
                             round(data["score"], 4), data["documents"]])


def draw(graph: nx.Graph, path: Path, max_nodes: int = 80) -> None:
    """A PNG of the largest nodes (by degree), coloured by type; CJK font when one is installed."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import font_manager
    from matplotlib import pyplot as plt

    for name in ("WenQuanYi Micro Hei", "Noto Sans CJK SC", "Noto Sans CJK JP"):
        if any(f.name == name for f in font_manager.fontManager.ttflist):
            plt.rcParams["font.sans-serif"] = [name]
            break
    keep = sorted(graph.nodes, key=lambda n: -graph.degree(n))[:max_nodes]
    sub = graph.subgraph(keep)
    fig, ax = plt.subplots(figsize=(12, 9), dpi=100)
    pos = nx.spring_layout(sub, seed=7, k=0.8)
    nx.draw_networkx_edges(sub, pos, ax=ax, width=[0.5 + d["weight"] for _, _, d in sub.edges(data=True)],
                           edge_color=["#c0392b" if d["label"] == "paired_with" else "#7f8c8d"
                                       for _, _, d in sub.edges(data=True)], alpha=0.7)
    nx.draw_networkx_nodes(sub, pos, ax=ax, node_color=[COLOURS[sub.nodes[n]["label"]] for n in sub.nodes],
                           node_size=[200 + 80 * sub.degree(n) for n in sub.nodes], edgecolors="#555")
    nx.draw_networkx_labels(sub, pos, ax=ax, font_size=7)
    ax.set_title("edupair: paired_with (red) and participates_in (grey)")
    ax.axis("off")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _highlight(text: str, entities: list[dict]) -> str:
    """The text as HTML with each entity in a <mark> carrying its label."""
    parts, cursor = [], 0
    for ent in sorted(entities, key=lambda e: e["start"]):
        parts.append(html.escape(text[cursor:ent["start"]]))
        canon = (ent.get("canonical") or {}).get("name") or ""
        parts.append(f'<mark class="ent ent-{ent["label"]}" data-label="{ent["label"]}" data-id="{ent["id"]}" '
                     f'title="{html.escape(ent["label"] + " " + canon)}">{html.escape(text[ent["start"]:ent["end"]])}'
                     f'<sub>{ent["label"]}</sub></mark>')
        cursor = ent["end"]
    parts.append(html.escape(text[cursor:]))
    return "".join(parts).replace("\n", "<br>")


def html_report(records: list[dict], texts: dict[str, str], graph: nx.Graph, png_name: str | None) -> str:
    """One page: summary tables, the network picture, then each document with highlights and relations."""
    paired = Counter()
    members = Counter()
    for a, b, data in graph.edges(data=True):
        if data["label"] == "paired_with":
            for n in (a, b):
                if graph.nodes[n]["label"] == "REGION":
                    paired[n] += data["weight"]
        else:
            program = a if graph.nodes[a]["label"] == "PROGRAM" else b
            members[program] += 1
    style = "".join(f".ent-{k}{{background:{v}}}" for k, v in COLOURS.items())
    rows = "".join(f"<tr><td>{html.escape(n)}</td><td>{c}</td></tr>" for n, c in paired.most_common(15))
    prog_rows = "".join(f"<tr><td>{html.escape(n)}</td><td>{c}</td></tr>" for n, c in members.most_common(15))
    body = [f"<h1>edupair report</h1><p>{len(records)} documents, {graph.number_of_nodes()} nodes, "
            f"{graph.number_of_edges()} edges.</p>",
            f"<h2>Most paired regions</h2><table><tr><th>region</th><th>documents</th></tr>{rows}</table>",
            f"<h2>Programs with most participants</h2><table><tr><th>program</th><th>participants</th></tr>"
            f"{prog_rows}</table>"]
    if png_name:
        body.append(f'<h2>Network</h2><img src="{png_name}" alt="pairing network" style="max-width:100%">')
    for rec in records:
        body.append(f'<section class="doc" id="doc-{html.escape(rec["id"])}"><h3>{html.escape(rec["id"])}</h3>')
        if rec.get("error"):
            body.append(f'<p class="error">error: {html.escape(rec["error"]["message"])}</p></section>')
            continue
        body.append(f'<p class="text">{_highlight(texts.get(rec["id"], ""), rec["entities"])}</p><ul>')
        body += [f"<li>{html.escape(r['head'])} <b>{r['label']}</b> {html.escape(r['tail'])} ({r['score']:.2f})</li>"
                 for r in rec["relations"]]
        body.append("</ul></section>")
    return (f'<!doctype html><html lang="zh"><head><meta charset="utf-8"><title>edupair report</title>'
            f"<style>body{{font-family:sans-serif;max-width:60em;margin:auto}}mark sub{{font-size:60%}}"
            f"td,th{{padding:0 1em}}{style}</style></head><body>{''.join(body)}</body></html>")


def write_corpus_view(records: list[dict], raw_texts: dict[str, str], out_dir: str | Path) -> dict:
    """edges.csv, graph.graphml, graph.png and report.html in `out_dir`; returns what was written."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    graph = build_graph(records)
    write_edges(graph, out / "edges.csv")
    nx.write_graphml(graph, out / "graph.graphml")
    draw(graph, out / "graph.png")
    texts = {doc_id: normalize(raw).text for doc_id, raw in raw_texts.items()}
    (out / "report.html").write_text(html_report(records, texts, graph, "graph.png"), encoding="utf-8")
    return {"nodes": graph.number_of_nodes(), "edges": graph.number_of_edges(), "out": str(out)}
