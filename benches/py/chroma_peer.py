"""The chromalite benchmark workload on Python chromadb's PersistentClient.

Reads a data directory in the debian-minilm layout (written by chromalite's harness), runs the same
steps as crates/chromalite-bench/src/workload.rs, and prints one JSON line with the same fields.

usage: chroma_peer.py --data DIR --store DIR [--open-only]
"""
import argparse
import json
import os
import resource
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

import chromadb
from chromadb.config import Settings

EF_CURVE = [10, 20, 50, 100, 200]
BATCH = 1000
REPEATS = 20


def load(d):
    meta = json.load(open(os.path.join(d, "meta.json")))
    dim = meta["dim"]
    base = np.fromfile(os.path.join(d, "base.f32"), dtype="<f4").reshape(-1, dim)
    queries = np.fromfile(os.path.join(d, "queries.f32"), dtype="<f4").reshape(-1, dim)
    k = meta.get("truth_k", 100)
    truth = np.fromfile(os.path.join(d, "truth.i32"), dtype="<i4").reshape(-1, k)[: len(queries), :10]
    rows = [json.loads(line) for line in open(os.path.join(d, "base.jsonl"))]
    return base, rows, queries, truth


def pct(sorted_ms, p):
    return sorted_ms[min(len(sorted_ms) - 1, round((len(sorted_ms) - 1) * p))] if sorted_ms else 0.0


def recall(truth, ids):
    hit = 0
    for t, got in zip(truth, ids):
        got_rows = {int(g[1:]) for g in got}
        hit += sum(1 for x in t if int(x) in got_rows)
    return hit / (10 * max(1, len(truth)))


def timed(col, queries):
    lat, ids = [], []
    for q in queries:
        t = time.perf_counter()
        r = col.query(query_embeddings=[q], n_results=10, include=["distances"])
        lat.append((time.perf_counter() - t) * 1e3)
        ids.append(r["ids"][0])
    return sorted(lat), ids


def p50_of(fn):
    lat = []
    for _ in range(REPEATS):
        t = time.perf_counter()
        fn()
        lat.append((time.perf_counter() - t) * 1e3)
    return pct(sorted(lat), 0.5)


def disk_mb(path):
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            total += os.path.getsize(os.path.join(root, f))
    return total / (1024 * 1024)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--store", required=True)
    ap.add_argument("--open-only", action="store_true")
    a = ap.parse_args()
    base, rows, queries, truth = load(a.data)
    settings = Settings(anonymized_telemetry=False)
    if a.open_only:
        t = time.perf_counter()
        client = chromadb.PersistentClient(path=a.store, settings=settings)
        col = client.get_collection("bench")
        col.query(query_embeddings=[queries[0]], n_results=10)
        print(json.dumps({"system": "chromadb", "open_to_first_query_ms": (time.perf_counter() - t) * 1e3}))
        return
    client = chromadb.PersistentClient(path=a.store, settings=settings)
    col = client.create_collection(
        "bench",
        configuration={"hnsw": {"space": "cosine", "ef_construction": 100, "max_neighbors": 16, "ef_search": 100}},
        embedding_function=None,
    )
    t = time.perf_counter()
    for s in range(0, len(base), BATCH):
        chunk = rows[s : s + BATCH]
        col.add(
            ids=[r["id"] for r in chunk],
            embeddings=base[s : s + BATCH],
            documents=[r.get("document") for r in chunk],
            metadatas=[r.get("metadata") for r in chunk],
        )
    col.query(query_embeddings=[base[0]], n_results=1)  # same "queryable" barrier as the Rust side
    ingest_rps = len(base) / (time.perf_counter() - t)
    lat, ids = timed(col, queries)
    m = {
        "system": "chromadb",
        "records": len(base),
        "ingest_rps": ingest_rps,
        "query_p50_ms": pct(lat, 0.5),
        "query_p99_ms": pct(lat, 0.99),
        "qps_1_thread": len(queries) / (sum(lat) / 1e3),
        "recall_at_10": recall(truth, ids),
    }
    t = time.perf_counter()
    half = (len(queries) + 1) // 2
    with ThreadPoolExecutor(2) as ex:
        list(ex.map(lambda qs: [col.query(query_embeddings=[q], n_results=10, include=["distances"]) for q in qs], [queries[:half], queries[half:]]))
    m["qps_2_threads"] = len(queries) / (time.perf_counter() - t)
    m["filtered_query_p50_ms"] = p50_of(lambda: col.query(query_embeddings=[queries[0]], n_results=10, where={"section": "libs"}))
    m["get_where_p50_ms"] = p50_of(lambda: col.get(where={"section": "games"}, limit=100))
    curve = []
    for ef in EF_CURVE:
        col.modify(configuration={"hnsw": {"ef_search": ef}})
        lat, ids = timed(col, queries)
        curve.append({"ef": ef, "recall_at_10": recall(truth, ids), "qps": len(queries) / (sum(lat) / 1e3)})
    m["curve"] = curve
    m["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    del col, client
    m["disk_mb"] = disk_mb(a.store)
    print(json.dumps(m))


if __name__ == "__main__":
    main()
