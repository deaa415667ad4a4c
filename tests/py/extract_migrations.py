"""Copy the `migrations` rows chromadb writes into crates/chromalite-sqlite/migrations/.

Chroma refuses a database whose migration rows differ from its own (it compares the stored SQL
text and its hash byte for byte), so chromalite must apply exactly the same SQL. This script asks
the installed chromadb to create a fresh directory and saves each row's `sql` column verbatim.
Run with the chromadb==1.5.9 venv python:  python tests/py/extract_migrations.py
"""
import hashlib
import pathlib
import sqlite3
import sys
import tempfile

import chromadb

root = pathlib.Path(__file__).resolve().parents[2] / "crates" / "chromalite-sqlite" / "migrations"
with tempfile.TemporaryDirectory() as tmp:
    chromadb.PersistentClient(path=tmp)
    con = sqlite3.connect(f"{tmp}/chroma.sqlite3")
    rows = con.execute("SELECT dir, version, filename, sql, hash FROM migrations ORDER BY rowid").fetchall()
    con.close()
for dir_, version, filename, sql, digest in rows:
    if hashlib.md5(sql.encode()).hexdigest() != digest:
        sys.exit(f"{dir_}/{filename}: stored hash is not md5 of the sql")
    out = root / dir_ / filename
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(sql.encode())
    print(f"{dir_} {version} {filename} {digest}")
