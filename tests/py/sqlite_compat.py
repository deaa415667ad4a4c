"""chromadb 1.5.9 side of the persist-directory compatibility tests (crates/chromalite-sqlite/tests).

    python sqlite_compat.py write DIR        Python writes a directory (several collections, spaces,
                                             metadata incl. arrays, documents, deletes, updates,
                                             more than one sync_threshold of records, a second tenant)
    python sqlite_compat.py mutate DIR       Python adds, updates and deletes more in DIR
    python sqlite_compat.py dump DIR SPEC    runs the reads in SPEC (JSON file) and prints results as JSON

SPEC is a list of {"tenant", "database", "collection", "op": "get"|"query"|"count", ...args}.
Every embedding is given explicitly: no embedding function ever runs.
"""
import json
import random
import sys

import chromadb


def client(path, tenant="default_tenant", database="default_database"):
    return chromadb.PersistentClient(path=path, tenant=tenant, database=database)


def vec(rng, dim):
    return [round(rng.uniform(-1, 1), 4) for _ in range(dim)]


def record_meta(i):
    if i % 7 == 0:
        return None
    m = {"i": i, "f": i / 4, "even": i % 2 == 0, "tag": ["red", "green", "blue"][i % 3]}
    if i % 3 == 0:
        m["arr"] = [i % 5, (i + 1) % 5]
    if i % 5 == 0:
        m["words"] = ["alpha", "beta"] if i % 10 == 0 else ["gamma"]
    return m


def add_records(col, rng, start, n, dim, prefix, batch=300):
    for b in range(start, start + n, batch):
        ids = [f"{prefix}{i}" for i in range(b, min(b + batch, start + n))]
        idx = range(b, min(b + batch, start + n))
        col.add(
            ids=ids,
            embeddings=[vec(rng, dim) for _ in ids],
            documents=[None if i % 11 == 0 else f"document {i} about {['cats', 'dogs', 'Birds'][i % 3]}" for i in idx],
            metadatas=[record_meta(i) for i in idx],
        )


def write(path):
    rng = random.Random(7)
    c = client(path)
    l2 = c.create_collection("l2col", embedding_function=None)
    add_records(l2, rng, 0, 1500, 8, "r")
    l2.delete(ids=[f"r{i}" for i in range(0, 100, 10)])
    l2.update(
        ids=["r1", "r2", "r3"],
        embeddings=[vec(rng, 8) for _ in range(3)],
        documents=["updated one", "updated two", "updated three"],
        metadatas=[{"i": 1001, "tag": None}, {"new": "yes"}, {"arr": [9, 9, 9]}],
    )
    l2.upsert(ids=["r4", "fresh1"], embeddings=[vec(rng, 8), vec(rng, 8)], metadatas=[{"up": True}, {"up": False}], documents=["u4", "fresh"])
    l2.delete(where={"$and": [{"tag": "blue"}, {"i": {"$gt": 1400}}]})
    cos = c.create_collection("coscol", embedding_function=None, metadata={"hnsw:space": "cosine", "owner": "py"})
    add_records(cos, rng, 0, 300, 5, "c", batch=100)
    ip = c.create_collection("ipcol", embedding_function=None, configuration={"hnsw": {"space": "ip", "ef_search": 50}})
    add_records(ip, rng, 0, 50, 4, "p", batch=50)
    c.create_collection("emptycol", embedding_function=None)
    admin = chromadb.AdminClient(chromadb.config.Settings(is_persistent=True, persist_directory=path))
    admin.create_tenant("tenantx")
    admin.create_database("dbx", tenant="tenantx")
    other = client(path, "tenantx", "dbx").create_collection("other", embedding_function=None)
    add_records(other, rng, 0, 20, 3, "o", batch=20)


def mutate(path):
    rng = random.Random(11)
    c = client(path)
    for col in c.list_collections():
        dim = len(col.get(limit=1, include=["embeddings"])["embeddings"][0]) if col.count() else 3
        ids = col.get(limit=4)["ids"]
        if ids:
            col.delete(ids=ids[:2])
        col.add(ids=[f"py{i}" for i in range(5)], embeddings=[vec(rng, dim) for _ in range(5)],
                documents=[f"python added {i}" for i in range(5)], metadatas=[{"py": i, "arr": ["x", "y"]} for i in range(5)])
        if len(ids) > 2:
            col.update(ids=[ids[2]], metadatas=[{"touched": 1.5}])


def to_py(v):
    if hasattr(v, "tolist"):
        return v.tolist()
    if isinstance(v, list):
        return [to_py(x) for x in v]
    return v


def run(col, step):
    op = step["op"]
    if op == "count":
        return col.count()
    args = {k: step[k] for k in ("ids", "where", "where_document", "limit", "offset", "include", "n_results") if k in step}
    if op == "get":
        r = col.get(**args)
    else:
        r = col.query(query_embeddings=step["query_embeddings"], **args)
    return {k: to_py(r.get(k)) for k in ("ids", "documents", "metadatas", "distances", "embeddings")}


def dump(path, spec_file):
    spec = json.load(open(spec_file))
    out = []
    for step in spec:
        c = client(path, step.get("tenant", "default_tenant"), step.get("database", "default_database"))
        try:
            out.append(run(c.get_collection(step["collection"]), step))
        except Exception as e:  # the Rust side compares error presence, not text
            out.append({"error": type(e).__name__, "message": str(e)})
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    cmd, path = sys.argv[1], sys.argv[2]
    {"write": lambda: write(path), "mutate": lambda: mutate(path), "dump": lambda: dump(path, sys.argv[3])}[cmd]()
