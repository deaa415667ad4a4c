"""chromadb 1.5.9 side of the randomized differential test
(crates/chromalite-sqlite/tests/random_diff.rs).

    python random_diff.py run DIR SEED PHASE

PHASE is "a" (apply the seed's first op sequence to DIR), "b" (apply the second one, on top of
what is in DIR), "read" or "read-b" (apply nothing; answer battery a or b). Then the client is closed, DIR reopened, and the
battery of reads for that phase is answered. Prints one JSON object:

    {"ops": [...], "outcomes": [...], "battery": [...], "answers": [...]}

`ops` and `battery` are what the seed generates (deterministic; the Rust side replays `ops` on
its own directory and answers `battery` too). `outcomes` holds, per op, "ok" (for a delete
"deleted N", chromadb's count) or the error kind;
`answers` the result (or error kind) of every battery read.

An op is {"op", "tenant", "database", ...arguments}; ops cover tenants/databases, collections
(spaces l2/ip/cosine, hnsw sync_threshold/batch_size small enough that records sit both in the
persisted HNSW and only in embeddings_queue), add/upsert/update/delete (by ids, where,
where_document, with a limit), metadata of every value type incl. arrays, documents, "reopen" (close every
client and open the directory again), collection renames / metadata replacement (modify),
get_or_create of an existing name with other metadata, and deletes with duplicate ids (refused).
Reads also cover peek, list_collections pages (their size: chromadb orders by random UUID) and
`#document` inside where. Every embedding is given: no embedding function runs.
"""
import json
import math
import random
import sys

import numpy as np

import chromadb
from chromadb.api.models.CollectionCommon import CollectionCommon
from chromadb.api.shared_system_client import SharedSystemClient


def _forbid_embedding(self, *args, **kwargs):
    raise AssertionError("chroma tried to compute embeddings: the generator must give embeddings")


CollectionCommon._embed = _forbid_embedding

WORDS = ["apple", "Banana", "cherry", "delta", "echo", "fox", "golf", "hotel", "ünïcode", "日本"]
STRS = ["red", "green", "blue", "Red", ""]
DB2 = ("tenant_two", "db_two")
DB3 = ("default_tenant", "second_db")


# ---------------------------------------------------------------------------------------------
# generation
# ---------------------------------------------------------------------------------------------


class Gen:
    def __init__(self, seed):
        self.r = random.Random(seed)
        # (tenant, database, name) -> {"dim", "next"}
        self.cols = {}
        self.counter = 0

    def vec(self, dim):
        return [round(self.r.uniform(-1, 1), 3) for _ in range(dim)]

    def scalar(self, key):
        r = self.r
        if key == "s":
            return r.choice(STRS)
        if key == "i":
            return r.randint(-3, 9)
        if key == "f":
            return r.choice([round(r.uniform(-5, 5), 2), 1.0, 0.0, 2.5])
        if key == "b":
            return r.random() < 0.5
        if key == "mixed":
            return r.choice([r.randint(0, 3), float(r.randint(0, 3)), r.choice(STRS), r.random() < 0.5])
        if key == "arr_s":
            return r.sample(STRS[:4], r.randint(1, 3))
        if key == "arr_i":
            return [r.randint(0, 5) for _ in range(r.randint(1, 3))]
        if key == "arr_f":
            return [r.choice([0.5, 1.0, 1.5, 2.0]) for _ in range(r.randint(1, 2))]
        if key == "arr_b":
            return [r.random() < 0.5 for _ in range(r.randint(1, 2))]
        raise AssertionError(key)

    KEYS = ["s", "i", "f", "b", "mixed", "arr_s", "arr_i", "arr_f", "arr_b"]

    def metadata(self, allow_none_values=False):
        r = self.r
        if r.random() < 0.12:
            return None
        m = {k: self.scalar(k) for k in r.sample(self.KEYS, r.randint(1, 5))}
        if allow_none_values and r.random() < 0.3:
            m[r.choice(self.KEYS)] = None
        return m

    def document(self):
        r = self.r
        k = r.random()
        if k < 0.15:
            return None
        if k < 0.2:
            return ""  # an empty document is a document (not None) in chromadb
        return " ".join(r.choice(WORDS) for _ in range(r.randint(1, 4)))

    def id_pool(self, col, n):
        """n distinct ids, mostly existing ones, some new (and some never seen)."""
        r = self.r
        out = []
        n = min(n, col["next"] + 4)
        while len(out) < n:
            x = r.randint(0, col["next"] + 3)
            i = f"id{x}"
            if i not in out:
                out.append(i)
        return out

    # -- filters ------------------------------------------------------------------------------
    def where_leaf(self):
        r = self.r
        key = r.choice(self.KEYS + ["nokey"])
        base = key
        kind = r.random()
        if key.startswith("arr_"):
            elem = self.scalar(key)[0]
            if kind < 0.7:
                return {key: {r.choice(["$contains", "$not_contains"]): elem}}
            return {key: {"$eq": elem}}
        if key == "nokey":
            op = r.choice(["$eq", "$ne", "$nin", "$in"])
            v = r.choice([1, "red"])
            return {key: {op: [v] if op in ("$in", "$nin") else v}}
        v = self.scalar(base)
        if key in ("i", "f") or (key == "mixed" and isinstance(v, (int, float)) and not isinstance(v, bool)):
            op = r.choice(["$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", None])
            if key == "i" and r.random() < 0.3:
                v = float(v) + r.choice([0.0, 0.5])
            if op is None:
                return {key: v}
            if op in ("$in", "$nin"):
                return {key: {op: [v, self.scalar(base) if key != "mixed" else v]}}
            return {key: {op: v}}
        op = r.choice(["$eq", "$ne", "$in", "$nin", None])
        if op is None:
            return {key: v}
        if op in ("$in", "$nin"):
            vals = [v]
            w = self.scalar(base)
            if type(w) is type(v) and w not in vals:
                vals.append(w)
            return {key: {op: vals}}
        return {key: {op: v}}

    def where(self, depth=0):
        r = self.r
        if r.random() < 0.05:
            # The document addressed inside where (only $contains / $not_contains are allowed).
            return {"#document": {r.choice(["$contains", "$not_contains"]): r.choice(WORDS)[:3]}}
        if depth < 2 and r.random() < 0.3:
            op = r.choice(["$and", "$or"])
            return {op: [self.where(depth + 1) for _ in range(r.randint(2, 3))]}
        return self.where_leaf()

    def where_document(self, depth=0):
        r = self.r
        if depth < 1 and r.random() < 0.2:
            return {r.choice(["$and", "$or"]): [self.where_document(depth + 1) for _ in range(2)]}
        word = r.choice(WORDS)
        k = r.random()
        if k < 0.35:
            return {"$contains": word[: r.randint(2, len(word))]}
        if k < 0.6:
            return {"$not_contains": word[: r.randint(2, len(word))]}
        if k < 0.8:
            return {"$regex": r.choice(["^a", "e$", "(?i)banana", "[0-9]", "o.*o", "^\\w+ \\w+$"])}
        return {"$not_regex": r.choice(["^a", "x", "(?i)APPLE"])}

    def include(self, query):
        r = self.r
        opts = ["documents", "metadatas", "embeddings"] + (["distances"] if query else [])
        if r.random() < 0.15:
            return None
        inc = r.sample(opts, r.randint(0, len(opts)))
        if r.random() < 0.1:
            inc.append("uris")
        return inc

    # -- ops ----------------------------------------------------------------------------------
    def live(self):
        return [k for k in self.cols]

    def new_collection(self, tenant, database):
        r = self.r
        self.counter += 1
        name = f"col_{self.counter}_{r.choice(['x', 'y', 'z'])}"
        space = r.choice(["l2", "ip", "cosine"])
        op = {"op": "create_collection", "tenant": tenant, "database": database, "name": name}
        style = r.random()
        hnsw = {"space": space}
        if r.random() < 0.7:
            hnsw["sync_threshold"] = r.choice([2, 3, 5, 8, 50])
            hnsw["batch_size"] = r.choice([2, 3, 5])
            hnsw["batch_size"] = min(hnsw["batch_size"], hnsw["sync_threshold"])
        if r.random() < 0.3:
            hnsw["ef_search"] = r.choice([100, 150])
            hnsw["max_neighbors"] = r.choice([12, 16, 32])
            hnsw["ef_construction"] = r.choice([100, 200])
        if style < 0.6:
            op["configuration"] = {"hnsw": hnsw}
            if r.random() < 0.5:
                op["metadata"] = {"owner": r.choice(["py", "rs"]), "n": r.randint(0, 5)}
        else:
            md = {"hnsw:space": space}
            if "sync_threshold" in hnsw:
                md["hnsw:sync_threshold"] = hnsw["sync_threshold"]
                md["hnsw:batch_size"] = hnsw["batch_size"]
            op["metadata"] = md
        if r.random() < 0.1:
            op["get_or_create"] = True
        self.cols[(tenant, database, name)] = {"dim": r.randint(2, 6), "next": 0}
        return op

    def modify_op(self):
        """Renames a collection (sometimes onto a taken name: refused) and/or replaces its
        metadata (a None value is dropped), or re-creates it with get_or_create and other
        metadata (chromadb keeps the existing collection as it is)."""
        r = self.r
        key = r.choice(self.live())
        t, d, name = key
        if r.random() < 0.3:
            return {"op": "create_collection", "tenant": t, "database": d, "name": name, "get_or_create": True,
                    "metadata": {"owner": "other", "n": r.randint(6, 9)}}
        op = {"op": "modify_collection", "tenant": t, "database": d, "name": name}
        k = r.random()
        if k < 0.6:
            same_db = [n for (t2, d2, n) in self.cols if (t2, d2) == (t, d) and n != name]
            if same_db and r.random() < 0.2:
                op["new_name"] = r.choice(same_db)
            else:
                self.counter += 1
                op["new_name"] = f"col_{self.counter}_m"
                self.cols[(t, d, op["new_name"])] = self.cols.pop(key)
        if k > 0.4:
            md = {"owner": r.choice(["py", "rs", "ünï"]), "n": r.choice([1, 2.5, True])}
            if r.random() < 0.3:
                md["gone"] = None
            op["new_metadata"] = md
        return op

    def write_op(self):
        r = self.r
        if r.random() < 0.04:
            return self.modify_op()
        key = r.choice(self.live())
        col = self.cols[key]
        t, d, name = key
        base = {"tenant": t, "database": d, "collection": name}
        k = r.random()
        dim = col["dim"]
        if k < 0.4:
            n = r.randint(1, 12)
            ids = [f"id{col['next'] + i}" for i in range(n)]
            if r.random() < 0.2 and col["next"] > 0:
                ids[0] = f"id{r.randint(0, col['next'] - 1)}"  # an existing id: ignored by add
                ids = list(dict.fromkeys(ids))
            col["next"] += n
            op = dict(base, op="add", ids=ids, embeddings=[self.vec(dim) for _ in ids])
            if r.random() < 0.85:
                op["documents"] = [self.document() for _ in ids]
            if r.random() < 0.85:
                op["metadatas"] = [self.metadata() for _ in ids]
            if r.random() < 0.04:
                op["embeddings"][0] = self.vec(dim + 1)  # wrong dimension: refused
            return op
        if k < 0.6:
            ids = self.id_pool(col, r.randint(1, 6))
            col["next"] = max(col["next"], max(int(i[2:]) for i in ids) + 1)
            op = dict(base, op="upsert", ids=ids, embeddings=[self.vec(dim) for _ in ids])
            if r.random() < 0.8:
                op["documents"] = [self.document() for _ in ids]
            if r.random() < 0.8:
                op["metadatas"] = [self.metadata(allow_none_values=True) for _ in ids]
            return op
        if k < 0.78:
            # Only ids that were written before (live or deleted since). An update of an id that
            # is added only later is a no-op in chromadb until its HNSW writer re-applies the
            # log, which it does at moments chromalite does not model: the vector then becomes
            # the update's (see the report of the differential test in the commit history).
            ids = [i for i in self.id_pool(col, r.randint(1, 5)) if int(i[2:]) < col["next"]] or ["id0"]
            op = dict(base, op="update", ids=ids)
            fields = r.sample(["embeddings", "documents", "metadatas"], r.randint(1, 3))
            if "documents" in fields:
                fields.append("embeddings")  # documents without embeddings would be embedded
            if "embeddings" in fields:
                op["embeddings"] = [self.vec(dim) for _ in ids]
            if "documents" in fields:
                op["documents"] = [self.document() for _ in ids]
            if "metadatas" in fields:
                op["metadatas"] = [self.metadata(allow_none_values=True) for _ in ids]
            return op
        op = dict(base, op="delete")
        kind = r.random()
        if kind < 0.05:
            op["ids"] = ["id0", "id1", "id0"]  # duplicates: refused
        elif kind < 0.55:
            op["ids"] = self.id_pool(col, r.randint(1, 4))
        elif kind < 0.8:
            op["where"] = self.where()
        elif kind < 0.9:
            op["where_document"] = self.where_document()
        elif kind < 0.93:
            op["ids"] = self.id_pool(col, 1)
            op["limit"] = 1  # limit without a filter: refused
        else:
            op["ids"] = self.id_pool(col, r.randint(2, 6))
            op["where"] = self.where_leaf()
        if ("where" in op or "where_document" in op) and r.random() < 0.4:
            op["limit"] = r.randint(0, 3)  # the first matches in get order go
        return op

    def ops(self, n, first):
        r = self.r
        out = []
        if first:
            out.append({"op": "create_tenant", "name": DB2[0]})
            out.append({"op": "create_database", "tenant": DB2[0], "name": DB2[1]})
            out.append({"op": "create_database", "tenant": DB3[0], "name": DB3[1]})
            for db in [("default_tenant", "default_database"), ("default_tenant", "default_database"), DB2, DB3]:
                out.append(self.new_collection(*db))
        for _ in range(n):
            k = r.random()
            if k < 0.05:
                out.append({"op": "reopen"})
            elif k < 0.08:
                out.append(self.new_collection(*r.choice([("default_tenant", "default_database"), DB2, DB3])))
            else:
                out.append(self.write_op())
        if not first:
            # Only at the very end: chromadb 1.5.9's delete_collection leaves the collection's
            # embedding_metadata_array rows behind, and SQLite hands their row ids to the next
            # records inserted anywhere, which then show the dead arrays in their metadata.
            # chromalite deletes those rows; see the report on chromadb's bug.
            key = r.choice(self.live())
            del self.cols[key]
            out.append({"op": "delete_collection", "tenant": key[0], "database": key[1], "name": key[2]})
        return out

    # -- reads --------------------------------------------------------------------------------
    def battery(self):
        r = self.r
        out = []
        for db in [("default_tenant", "default_database"), DB2, DB3]:
            out.append({"op": "list_collections", "tenant": db[0], "database": db[1]})
            out.append({"op": "count_collections", "tenant": db[0], "database": db[1]})
            # chromadb lists collections in the order of their random UUIDs: a page's size is
            # what compares.
            out.append({"op": "list_collections", "tenant": db[0], "database": db[1],
                        "limit": r.randint(0, 3), "offset": r.randint(0, 3)})
        for (t, d, name), col in sorted(self.cols.items()):
            base = {"tenant": t, "database": d, "collection": name}
            out.append(dict(base, op="count"))
            out.append(dict(base, op="get_collection"))
            out.append(dict(base, op="get", include=["documents", "metadatas", "embeddings"]))
            out.append(dict(base, op="peek", limit=r.randint(0, 12)))
            for _ in range(8):
                g = dict(base, op="get")
                if r.random() < 0.5:
                    g["where"] = self.where()
                if r.random() < 0.25:
                    g["where_document"] = self.where_document()
                if r.random() < 0.2:
                    g["ids"] = self.id_pool(col, r.randint(1, 6))
                if r.random() < 0.3:
                    g["limit"] = r.randint(0, 8)
                if r.random() < 0.3:
                    g["offset"] = r.randint(0, 6)
                inc = self.include(False)
                if inc is not None:
                    g["include"] = inc
                out.append(g)
            for _ in range(6):
                q = dict(base, op="query", query_embeddings=[self.vec(col["dim"]) for _ in range(r.randint(1, 2))],
                         n_results=r.randint(1, 12))
                if r.random() < 0.4:
                    q["where"] = self.where()
                if r.random() < 0.2:
                    q["where_document"] = self.where_document()
                if r.random() < 0.1:
                    q["ids"] = self.id_pool(col, r.randint(1, 6))
                inc = self.include(True)
                if inc is not None:
                    q["include"] = inc
                out.append(q)
        return out


def generate(seed):
    g = Gen(seed)
    ops_a = g.ops(70, True)
    battery_a = g.battery()
    ops_b = g.ops(35, False)
    battery_b = g.battery()
    return {"a": (ops_a, battery_a), "b": (ops_b, battery_b)}


# ---------------------------------------------------------------------------------------------
# execution
# ---------------------------------------------------------------------------------------------


def to_json(v):
    if v is None or isinstance(v, (bool, str)):
        return v
    if isinstance(v, int):
        return int(v)
    if isinstance(v, float):
        assert math.isfinite(v), v
        return v
    if isinstance(v, np.ndarray):
        return to_json(v.tolist())
    if isinstance(v, np.bool_):
        return bool(v)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    if isinstance(v, (list, tuple)):
        return [to_json(x) for x in v]
    if isinstance(v, dict):
        return {str(k): to_json(v[k]) for k in sorted(v)}
    raise TypeError(type(v).__name__)


def error_kind(exc):
    """The chromalite ErrorKind a chromadb exception corresponds to (as fixtures/gen/make_expected.py)."""
    name = type(exc).__name__
    low = str(exc).lower()
    if "embedding with dimension" in low or "inconsistent dimensions" in low:
        return "DimensionMismatch"
    if name == "NotFoundError" or "does not exist" in low or "not found" in low:
        return "NotFound"
    if name in ("UniqueConstraintError", "IDAlreadyExistsError") or "already exists" in low \
            or "unique constraint failed" in low:
        return "AlreadyExists"
    if name in ("InvalidArgumentError", "ValueError", "TypeError", "DuplicateIDError",
                "InvalidDimensionException", "OverflowError", "IndexError"):
        return "InvalidArgument"
    return "Internal"


class Store:
    def __init__(self, path):
        self.path = path
        self.clients = {}
        self.admin_client = None

    def client(self, tenant, database):
        key = (tenant, database)
        if key not in self.clients:
            self.clients[key] = chromadb.PersistentClient(path=self.path, tenant=tenant, database=database)
        return self.clients[key]

    def admin(self):
        if self.admin_client is None:
            self.admin_client = chromadb.AdminClient(
                chromadb.config.Settings(is_persistent=True, persist_directory=self.path, anonymized_telemetry=False))
        return self.admin_client

    def close(self):
        for c in self.clients.values():
            c.close()
        self.clients = {}
        self.admin_client = None
        for system in list(SharedSystemClient._identifier_to_system.values()):
            system.stop()
        SharedSystemClient.clear_system_cache()

    def col(self, step):
        return self.client(step["tenant"], step["database"]).get_collection(step["collection"], embedding_function=None)


def kw(step, *keys):
    return {k: step[k] for k in keys if k in step}


def apply(store, op):
    kind = op["op"]
    if kind == "reopen":
        store.close()
        return None
    if kind == "create_tenant":
        store.admin().create_tenant(op["name"])
        return None
    if kind == "create_database":
        store.admin().create_database(op["name"], tenant=op["tenant"])
        return None
    if kind == "create_collection":
        store.client(op["tenant"], op["database"]).create_collection(
            embedding_function=None, **kw(op, "name", "metadata", "configuration", "get_or_create"))
        return None
    if kind == "delete_collection":
        store.client(op["tenant"], op["database"]).delete_collection(op["name"])
        return None
    if kind == "modify_collection":
        col = store.client(op["tenant"], op["database"]).get_collection(op["name"], embedding_function=None)
        col.modify(**{k: op[n] for k, n in (("name", "new_name"), ("metadata", "new_metadata")) if n in op})
        return None
    col = store.col(op)
    if kind in ("add", "upsert", "update"):
        getattr(col, kind)(**kw(op, "ids", "embeddings", "documents", "metadatas"))
        return None
    if kind == "delete":
        return "deleted {}".format(col.delete(**kw(op, "ids", "where", "where_document", "limit"))["deleted"])
    raise AssertionError(kind)


def read(store, step):
    kind = step["op"]
    if kind in ("list_collections", "count_collections"):
        c = store.client(step["tenant"], step["database"])
        if kind == "count_collections":
            return c.count_collections()
        if "limit" in step:
            return len(c.list_collections(limit=step["limit"], offset=step["offset"]))
        return sorted(col.name for col in c.list_collections())
    col = store.col(step)
    if kind == "count":
        return col.count()
    if kind == "get_collection":
        hnsw = (col.configuration or {}).get("hnsw") or {}
        return {"name": col.name, "metadata": to_json(col.metadata),
                "hnsw": {k: to_json(hnsw.get(k)) for k in ("space", "ef_search", "ef_construction", "max_neighbors")}}
    if kind == "peek":
        res = col.peek(limit=step["limit"])
    elif kind == "get":
        res = col.get(**kw(step, "ids", "where", "where_document", "limit", "offset", "include"))
    else:
        res = col.query(**kw(step, "query_embeddings", "n_results", "ids", "where", "where_document", "include"))
    out = {k: to_json(res.get(k)) for k in ("ids", "documents", "metadatas", "embeddings", "distances", "uris")}
    out["include"] = sorted(to_json(res.get("included")) or [])
    if kind == "query":
        # The distances of the hits, so that runs of equal distances compare as sets even when
        # the battery did not include distances.
        args = kw(step, "query_embeddings", "n_results", "ids", "where", "where_document")
        out["tie_distances"] = to_json(col.query(include=["distances"], **args)["distances"])
        out["exact"] = exact_candidates(col, step)
    return out


def exact_candidates(col, step):
    """Per query embedding, every record the query may return as [id, distance], nearest first,
    by brute force. chromadb's HNSW search is approximate (and its graph depends on thread timing),
    so on small low-dimensional collections it now and then misses a neighbour; the Rust side uses
    this to tell such a miss from a wrong answer."""
    space = ((col.configuration or {}).get("hnsw") or {}).get("space") or "l2"
    cand = col.get(include=["embeddings"], **kw(step, "ids", "where", "where_document"))
    ids = cand["ids"]
    if not ids:
        return [[] for _ in step["query_embeddings"]]
    data = np.array(cand["embeddings"], dtype=np.float64)
    out = []
    for q in step["query_embeddings"]:
        q = np.array(q, dtype=np.float64)
        if space == "l2":
            d = ((data - q) ** 2).sum(axis=1)
        elif space == "ip":
            d = 1.0 - data @ q
        else:
            norms = np.linalg.norm(data, axis=1) * np.linalg.norm(q)
            d = 1.0 - (data @ q) / np.where(norms == 0, 1.0, norms)
        out.append(sorted(([i, float(x)] for i, x in zip(ids, d)), key=lambda p: p[1]))
    return out


def run(path, seed, phase):
    gen = generate(seed)
    ops, battery = gen["b" if phase in ("b", "read-b") else "a"]
    if phase.startswith("read"):
        ops = []
    store = Store(path)
    outcomes = []
    for op in ops:
        try:
            outcomes.append(apply(store, json.loads(json.dumps(op))) or "ok")
        except Exception as e:  # noqa: BLE001 - every failure is data
            if type(e).__name__ in ("PanicException", "AssertionError"):
                raise
            outcomes.append(error_kind(e))
    store.close()
    answers = []
    store = Store(path)
    for step in battery:
        try:
            answers.append({"ok": read(store, json.loads(json.dumps(step)))})
        except Exception as e:  # noqa: BLE001
            if type(e).__name__ in ("PanicException", "AssertionError"):
                raise
            answers.append({"error": error_kind(e), "message": str(e)[:200]})
    store.close()
    json.dump({"ops": ops, "outcomes": outcomes, "battery": battery, "answers": answers}, sys.stdout)


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "run":
        run(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    else:
        raise SystemExit(f"unknown command {cmd}")
