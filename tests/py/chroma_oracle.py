"""Drives real chromadb (PersistentClient) for chromalite's CLI compatibility tests.

usage:
  chroma_oracle.py build DIR        write a Chroma directory, print [{"collection","op","args","result"}]
  chroma_oracle.py answer DIR FILE  answer the requests in FILE (same shape, "result" ignored) from DIR
  chroma_oracle.py mutate DIR NAME  add 10 records (m0..m9, dim 8) and delete the first two ids of NAME

Requests use chromadb's argument names (ids, where, where_document, limit, offset, include,
query_embeddings, n_results); results are chromadb's get/query dicts with numpy arrays as lists.
"""
import json
import random
import sys

import chromadb
from chromadb.config import Settings


def client(path):
    return chromadb.PersistentClient(path=path, settings=Settings(anonymized_telemetry=False))


def to_json(result):
    """Every key of chromadb's result dict (None where not included), numpy arrays as lists, and
    `include` (the CLI contract's name for chromadb's `included`) beside `included`."""
    out = {}
    for key, value in result.items():
        if value is not None and hasattr(value, "tolist"):
            value = value.tolist()
        if key == "embeddings" and value is not None:
            value = [v.tolist() if hasattr(v, "tolist") else [x.tolist() if hasattr(x, "tolist") else x for x in v] for v in value]
        out[key] = value
    out["included"] = [str(i) for i in result.get("included", [])]
    out["include"] = out["included"]
    return out


def run(col, op, args):
    kwargs = {k: v for k, v in args.items() if v is not None}
    if op == "get":
        return to_json(col.get(**kwargs))
    if op == "query":
        return to_json(col.query(**kwargs))
    if op == "count":
        return col.count()
    raise ValueError(op)


def vec(rng, dim):
    return [round(rng.uniform(-1, 1), 4) for _ in range(dim)]


def build(path):
    rng = random.Random(11)
    c = client(path)
    requests = []

    # 1. cosine, 1,500 records (past the default sync_threshold of 1000), documents + scalar and array metadata
    big = c.create_collection("packages", configuration={"hnsw": {"space": "cosine"}}, embedding_function=None)
    sections = ["games", "libs", "devel", "net", "doc"]
    ids, embs, docs, metas = [], [], [], []
    for i in range(1500):
        ids.append(f"p{i}")
        embs.append(vec(rng, 16))
        docs.append(f"package {i} for {sections[i % 5]} users" + (" with extras" if i % 7 == 0 else ""))
        m = {"section": sections[i % 5], "size": i * 3, "ratio": round(i / 7.0, 3), "free": i % 2 == 0}
        if i % 4 == 0:
            m["tags"] = [sections[i % 5], f"t{i % 3}"]
        metas.append(m)
    for s in range(0, 1500, 300):
        big.add(ids=ids[s:s + 300], embeddings=embs[s:s + 300], documents=docs[s:s + 300], metadatas=metas[s:s + 300])
    big.delete(ids=[f"p{i}" for i in range(0, 1500, 50)])
    big.update(ids=["p1", "p2"], metadatas=[{"section": "updated"}, {"size": None}], documents=["renamed one", "renamed two"], embeddings=[vec(rng, 16), vec(rng, 16)])
    big.upsert(ids=["p3", "new1"], embeddings=[vec(rng, 16), vec(rng, 16)], documents=["upserted three", "brand new"], metadatas=[{"size": -1}, {"section": "games"}])

    # 2. l2, small, unicode, no documents for some
    small = c.create_collection("notes", metadata={"owner": "ünïcode", "n": 1}, embedding_function=None)
    small.add(ids=["a", "b", "c", "d", "é"], embeddings=[vec(rng, 4) for _ in range(5)],
              documents=["東京タワー", None, "emoji 🚀", "plain", "café"],
              metadatas=[{"k": 1}, None, {"k": 2.5, "arr": [1, 2]}, {"k": True}, {"lang": "fr"}])

    # 3. ip via legacy metadata
    ip = c.create_collection("inner", metadata={"hnsw:space": "ip"}, embedding_function=None)
    ip.add(ids=[f"i{i}" for i in range(40)], embeddings=[vec(rng, 8) for _ in range(40)])

    q16 = [vec(rng, 16) for _ in range(3)]
    for args in [
        {"include": ["documents", "metadatas"], "limit": 20},
        {"where": {"section": "games"}, "include": ["metadatas"], "limit": 15, "offset": 5},
        {"where": {"$and": [{"size": {"$gte": 100}}, {"size": {"$lt": 400}}]}, "include": ["metadatas", "documents"]},
        {"where": {"tags": {"$contains": "t1"}}, "limit": 10, "include": ["metadatas"]},
        {"where_document": {"$contains": "extras"}, "limit": 12, "include": ["documents"]},
        {"ids": ["p1", "p2", "p3", "new1", "p0", "missing"], "include": ["documents", "metadatas", "embeddings"]},
        {"where": {"$or": [{"free": True}, {"ratio": {"$gt": 200.5}}]}, "limit": 25},
    ]:
        requests.append({"collection": "packages", "op": "get", "args": args})
    for args in [
        {"query_embeddings": q16, "n_results": 5},
        {"query_embeddings": q16[:1], "n_results": 8, "where": {"section": {"$in": ["libs", "net"]}}, "include": ["distances", "metadatas"]},
        {"query_embeddings": q16[1:2], "n_results": 4, "where_document": {"$contains": "devel"}, "include": ["documents", "distances"]},
        {"query_embeddings": q16[2:], "n_results": 3, "where": {"size": {"$lt": 30}}, "include": ["distances", "embeddings"]},
    ]:
        requests.append({"collection": "packages", "op": "query", "args": args})
    requests.append({"collection": "packages", "op": "count", "args": {}})
    requests.append({"collection": "notes", "op": "get", "args": {"include": ["documents", "metadatas", "embeddings"]}})
    requests.append({"collection": "notes", "op": "query", "args": {"query_embeddings": [vec(rng, 4)], "n_results": 10}})
    requests.append({"collection": "notes", "op": "get", "args": {"where": {"k": {"$gte": 1}}}})
    # Include variants: fields left out are None in chromadb's dict (uris and data included).
    requests.append({"collection": "notes", "op": "get", "args": {"include": []}})
    requests.append({"collection": "notes", "op": "get", "args": {"offset": 2, "include": ["embeddings", "uris"]}})
    requests.append({"collection": "notes", "op": "query", "args": {"query_embeddings": [vec(rng, 4)], "n_results": 3, "include": []}})
    requests.append({"collection": "notes", "op": "query", "args": {"query_embeddings": [vec(rng, 4)], "n_results": 2, "include": ["uris", "embeddings"]}})
    requests.append({"collection": "inner", "op": "query", "args": {"query_embeddings": [vec(rng, 8), vec(rng, 8)], "n_results": 6, "include": ["distances"]}})
    answer_all(c, requests)
    return requests


def answer_all(c, requests):
    for r in requests:
        col = c.get_collection(r["collection"])
        r["result"] = run(col, r["op"], r["args"])


def main():
    cmd, path = sys.argv[1], sys.argv[2]
    if cmd == "build":
        out = build(path)
    elif cmd == "mutate":
        col = client(path).get_collection(sys.argv[3])
        rng = random.Random(5)
        first = col.get(limit=2, include=[])["ids"]
        col.add(ids=[f"m{i}" for i in range(10)], embeddings=[vec(rng, 8) for _ in range(10)],
                documents=[f"added by python {i}" for i in range(10)], metadatas=[{"py": i} for i in range(10)])
        col.delete(ids=first)
        out = {"deleted": first, "count": col.count()}
    elif cmd == "answer":
        out = json.load(open(sys.argv[3]))
        answer_all(client(path), out)
    else:
        raise SystemExit(f"unknown command {cmd}")
    json.dump(out, sys.stdout, ensure_ascii=False)


if __name__ == "__main__":
    main()
