"""Drives chromadb (1.5.9) for crates/chromalite-hnsw/tests/chroma_roundtrip.rs.

    python chroma_roundtrip.py build  WORK SPACE   # make a collection, flush its HNSW files, query
    python chroma_roundtrip.py query  WORK         # reopen (files replaced by Rust), query, add more, query

Everything is written as JSON into WORK. Record i has id "r{i}", metadata {"grp": i % 5}.
Vectors are deterministic (numpy seed), so both sides agree on them.
"""
import json
import os
import sqlite3
import sys

import numpy as np
import chromadb

DIM = 16
K = 10
N_QUERIES = 25
COLLECTION = "roundtrip"


def records(start, n, seed):
    embs = np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)
    ids = [f"r{i}" for i in range(start, start + n)]
    metas = [{"grp": i % 5} for i in range(start, start + n)]
    return ids, embs, metas


def queries():
    return np.random.default_rng(424242).standard_normal((N_QUERIES, DIM)).astype(np.float32)


def segment_dir(persist, collection_id):
    db = sqlite3.connect(os.path.join(persist, "chroma.sqlite3"))
    rows = db.execute(
        "SELECT id FROM segments WHERE collection = ? AND scope = 'VECTOR'", (str(collection_id),)
    ).fetchall()
    db.close()
    assert len(rows) == 1, rows
    return os.path.join(persist, rows[0][0])


def run_queries(col):
    q = queries()
    plain = col.query(query_embeddings=q, n_results=K, include=["distances"])
    filt = col.query(query_embeddings=q, n_results=K, where={"grp": 2}, include=["distances"])
    return {
        "plain": {"ids": plain["ids"], "distances": plain["distances"]},
        "filtered_grp2": {"ids": filt["ids"], "distances": filt["distances"]},
    }


def build(work, space):
    persist = os.path.join(work, "db")
    client = chromadb.PersistentClient(path=persist)
    col = client.create_collection(COLLECTION, metadata={"hnsw:space": space})
    # 1000 adds: Chroma's sync_threshold (1000 log records) is reached -> files written.
    ids, embs, metas = records(0, 1000, 1)
    col.add(ids=ids, embeddings=embs, metadatas=metas)
    # 990 adds + 10 deletes = 1000 more log records -> files written again, so the
    # files on disk hold exactly what Chroma serves from memory.
    ids2, embs2, metas2 = records(1000, 990, 2)
    col.add(ids=ids2, embeddings=embs2, metadatas=metas2)
    deleted = [f"r{i}" for i in range(0, 100, 10)]
    col.delete(ids=deleted)
    seg = segment_dir(persist, col.id)
    assert os.path.exists(os.path.join(seg, "header.bin")), os.listdir(seg)
    out = {
        "space": space,
        "dim": DIM,
        "k": K,
        "segment_dir": seg,
        "count": col.count(),
        "ids": ids + ids2,
        "embeddings": np.concatenate([embs, embs2]).tolist(),
        "deleted": deleted,
        "queries": queries().tolist(),
        "results": run_queries(col),
    }
    with open(os.path.join(work, "build.json"), "w") as f:
        json.dump(out, f)


def query(work):
    persist = os.path.join(work, "db")
    client = chromadb.PersistentClient(path=persist)
    col = client.get_collection(COLLECTION)
    before = run_queries(col)
    count_before = col.count()
    # Keep writing: 1000 more log records make Chroma persist its dirty
    # elements into the files we wrote (persistDirty writes in place).
    ids, embs, metas = records(1990, 1000, 3)
    col.add(ids=ids, embeddings=embs, metadatas=metas)
    after = run_queries(col)
    out = {
        "count_before": count_before,
        "before": before,
        "count_after": col.count(),
        "added_ids": ids,
        "added_embeddings": embs.tolist(),
        "after": after,
    }
    with open(os.path.join(work, "query.json"), "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    cmd, work = sys.argv[1], sys.argv[2]
    if cmd == "build":
        build(work, sys.argv[3])
    elif cmd == "query":
        query(work)
    else:
        raise SystemExit(f"unknown command {cmd}")
