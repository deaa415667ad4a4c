"""hnswlib (the Python wheel in the project venv) on debian-minilm, same
parameters as src/main.rs: cosine, M=16, ef_construction=100, seed 0, k=10.

    python benches/hnsw-bench/hnswlib_bench.py --data ../shared/data/debian-minilm
"""
import argparse
import os
import time

import hnswlib
import numpy as np

DIM = 384
K = 10
EFS = [10, 20, 50, 100, 150, 200]

ap = argparse.ArgumentParser()
ap.add_argument("--data", default=os.environ.get("CHROMALITE_BENCH_DATA"))
ap.add_argument("--threads", type=int, default=os.cpu_count())
ap.add_argument("--repeat", type=int, default=1, help="time each single-thread query loop this many times, keep the fastest")
ap.add_argument("--ef-construction", type=int, default=100,
                help="hnswlib's ef_construction (100 = the shared parameters; higher values find the "
                "build time hnswlib needs to match a given recall)")
ap.add_argument("--export", help="also write hnswlib's graph as a Chroma four-file segment into this folder "
                "(for `hnsw-bench --load DIR`: chromalite searching hnswlib's own graph)")
args = ap.parse_args()
base = np.fromfile(os.path.join(args.data, "base.f32"), dtype="<f4").reshape(-1, DIM)
queries = np.fromfile(os.path.join(args.data, "queries.f32"), dtype="<f4").reshape(-1, DIM)
truth = np.fromfile(os.path.join(args.data, "truth.i32"), dtype="<i4").reshape(-1, 100)[:, :K]
n = len(base)
print(f"hnswlib {hnswlib.__version__ if hasattr(hnswlib, '__version__') else ''}: {n} x {DIM}, {len(queries)} queries, {args.threads} threads")

p = hnswlib.Index(space="cosine", dim=DIM)
p.init_index(max_elements=n, ef_construction=args.ef_construction, M=16, random_seed=0)
p.set_num_threads(args.threads)
t = time.perf_counter()
cpu = time.process_time()
p.add_items(base, np.arange(n))
build = time.perf_counter() - t
cpu = time.process_time() - cpu
print(f"hnswlib build (ef_construction {args.ef_construction}): {build:.2f} s ({n / build:.0f} inserts/s), {cpu:.2f} s CPU (all threads)")


def export_four_files(index, out):
    """Upstream hnswlib's single-file saveIndex = Chroma's header fields without the
    version word, then cur_element_count level-0 records, then the link-list blocks.
    Chroma's fork splits the same bytes over four files (plus a version word and
    length.bin, the pre-normalisation norms: 1.0 here, as the data is unit length)."""
    import struct
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        single = os.path.join(tmp, "index.bin")
        index.save_index(single)
        raw = open(single, "rb").read()
    head = raw[:96]
    (_, _, count, size_per, *_rest) = struct.unpack("<QQQQQQiIQQQdQ", head)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "header.bin"), "wb") as f:
        f.write(struct.pack("<i", 1) + head)
    with open(os.path.join(out, "data_level0.bin"), "wb") as f:
        f.write(raw[96 : 96 + count * size_per])
    with open(os.path.join(out, "length.bin"), "wb") as f:
        f.write(struct.pack(f"<{count}f", *([1.0] * count)))
    with open(os.path.join(out, "link_lists.bin"), "wb") as f:
        f.write(raw[96 + count * size_per :])


if args.export:
    export_four_files(p, args.export)
    print(f"exported hnswlib's graph to {args.export}")


def recall(labels):
    return np.mean([len(set(l) & set(t)) for l, t in zip(labels, truth)]) / K


def recall_ties(labels):
    # a returned row counts when its exact distance is <= that of the 10th true neighbour
    hit = 0
    for q, l, t in zip(queries.astype(np.float64), labels, truth):
        cut = 1.0 - q @ base[t[K - 1]].astype(np.float64) + 1e-6
        hit += int(np.sum(1.0 - base[l].astype(np.float64) @ q <= cut))
    return hit / (len(labels) * K)


print()
print(f"| library | build s | ef | recall@10 | recall@10 (ties) | QPS 1 thread (CPU time) | QPS {args.threads} threads |")
print("|---|---|---|---|---|---|---|")
for ef in EFS:
    p.set_ef(ef)
    # one query per call, one thread: the per-query latency path
    p.set_num_threads(1)
    qps1 = 0.0
    for _ in range(args.repeat):
        t = time.thread_time()  # CPU time of this thread, as the Rust bench measures
        single = [p.knn_query(q, k=K)[0][0] for q in queries]
        qps1 = max(qps1, len(queries) / (time.thread_time() - t))
    # whole batch in one call, all threads
    p.set_num_threads(args.threads)
    t = time.perf_counter()
    labels, _ = p.knn_query(queries, k=K)
    qpsp = len(queries) / (time.perf_counter() - t)
    print(f"| hnswlib | {build:.2f} | {ef} | {recall(labels):.4f} | {recall_ties(labels):.4f} | {qps1:.0f} | {qpsp:.0f} |")
