"""What a run store holds, byte for byte: its SQLite schema and the codecs of its blob columns.

Tables:
    foolkit_meta(key, value)             marks the file as a foolkit store (and its schema version)
    runs(run_id, title, config, ...)     one row per run; ``config`` is the JSON that was hashed
    samples(run_id, idx, ...)            one row per image: labels, predictions, verification,
                                         norms, iterations, seconds; UNIQUE(run_id, idx)
    blobs(run_id, idx, ...)              the clean image, the 8-bit adversarial image (PNG), the
                                         exact float32 perturbation and per-sample extra arrays
                                         (zlib'd .npy / .npz); UNIQUE(run_id, idx)
    artifacts(run_id, key, data)         run-level arrays (a universal perturbation)

:class:`~foolkit.evaluation.store.Store` reads and writes files of this format.
"""
from __future__ import annotations

import io
import zlib
from typing import Any

import numpy as np

APPLICATION_ID = 0x466B5354  # "FkST" in the SQLite header
SCHEMA_VERSION = "1"

# Per-sample columns after (run_id, idx): name -> SQL type.
SAMPLE_COLUMNS: dict[str, str] = {
    "label": "INTEGER NOT NULL", "pred": "INTEGER NOT NULL", "clean_conf": "REAL",
    "attacked": "INTEGER NOT NULL", "target": "INTEGER",
    "adv_label": "INTEGER NOT NULL", "adv_conf": "REAL",
    "success": "INTEGER NOT NULL", "verified": "INTEGER NOT NULL",
    "q_label": "INTEGER NOT NULL", "q_conf": "REAL", "verified_q": "INTEGER NOT NULL",
    "quant_lost": "INTEGER NOT NULL",
    "l0": "REAL", "pixels": "REAL", "l2": "REAL", "linf": "REAL",
    "x_l2": "REAL", "x_linf": "REAL", "xc_l2": "REAL", "xc_linf": "REAL",
    "iterations": "INTEGER", "seconds": "REAL", "in_fit": "INTEGER NOT NULL DEFAULT 0",
    "batch": "INTEGER",
}
BLOB_COLUMNS = ("image", "adv", "perturbation", "extra")
BOOL_COLUMNS = ("attacked", "success", "verified", "verified_q", "quant_lost", "in_fit")

SCHEMA = [
    "CREATE TABLE foolkit_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE runs (run_id TEXT PRIMARY KEY, title TEXT, config TEXT NOT NULL, n_total INTEGER NOT NULL, "
    "created REAL NOT NULL, updated REAL NOT NULL, complete INTEGER NOT NULL DEFAULT 0)",
    "CREATE TABLE samples (run_id TEXT NOT NULL REFERENCES runs(run_id), idx INTEGER NOT NULL, "
    + ", ".join(f"{k} {v}" for k, v in SAMPLE_COLUMNS.items()) + ", UNIQUE (run_id, idx))",
    "CREATE TABLE blobs (run_id TEXT NOT NULL REFERENCES runs(run_id), idx INTEGER NOT NULL, "
    + ", ".join(f"{k} BLOB" for k in BLOB_COLUMNS) + ", UNIQUE (run_id, idx))",
    "CREATE TABLE artifacts (run_id TEXT NOT NULL REFERENCES runs(run_id), key TEXT NOT NULL, data BLOB, "
    "UNIQUE (run_id, key))",
]

ARTIFACT_UPSERT = ("INSERT INTO artifacts (run_id, key, data) VALUES (?, ?, ?) "
                   "ON CONFLICT (run_id, key) DO UPDATE SET data = excluded.data")


def sql_value(v: Any) -> Any:
    """A record's value as SQLite stores it: numpy scalars and bools as Python int/float."""
    if v is None:
        return None
    if isinstance(v, (bool, np.bool_)):
        return int(v)
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    return v


# --- blob codecs ---------------------------------------------------------------------------
def encode_array(a: np.ndarray) -> bytes:
    """Exact, compressed: zlib of the ``.npy`` bytes (dtype and shape included)."""
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(a), allow_pickle=False)
    return zlib.compress(buf.getvalue(), 6)


def encode_png(img: np.ndarray) -> bytes:
    """``[C,H,W]`` float in [0,1] (C = 1 or 3) -> 8-bit PNG of round(255 * clip(img))."""
    from PIL import Image

    u8 = np.clip(np.rint(np.asarray(img, dtype=np.float64) * 255), 0, 255).astype(np.uint8)
    arr = u8[0] if u8.shape[0] == 1 else u8.transpose(1, 2, 0)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def encode_image(img: np.ndarray) -> bytes:
    """PNG when the image is exactly 8-bit (k/255, as CIFAR-10 is), else an exact float array."""
    a = np.asarray(img, dtype=np.float32)
    if a.ndim == 3 and a.shape[0] in (1, 3) and np.array_equal(np.float32(np.rint(a * 255)) / np.float32(255), a):
        return encode_png(a)
    return encode_array(a)


def encode_extra(arrays: dict[str, np.ndarray]) -> bytes | None:
    """Per-sample extra arrays (any shapes) -> zlib'd ``.npz``; None when empty."""
    if not arrays:
        return None
    buf = io.BytesIO()
    # numpy's stub types **kwds like its allow_pickle flag (bool)
    np.savez(buf, **{k: np.asarray(v) for k, v in arrays.items()})  # type: ignore[arg-type]
    return zlib.compress(buf.getvalue(), 6)


def decode(blob: bytes | None) -> np.ndarray | dict[str, np.ndarray] | None:
    """Inverse of the encoders: PNG -> float32 ``[C,H,W]`` in [0,1]; .npy -> array; .npz -> dict."""
    if blob is None:
        return None
    blob = bytes(blob)
    if blob.startswith(b"\x89PNG"):
        from PIL import Image

        arr: np.ndarray = np.asarray(Image.open(io.BytesIO(blob)), dtype=np.float32) / np.float32(255)
        return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1).copy()
    raw = zlib.decompress(blob)
    if raw.startswith(b"PK"):
        with np.load(io.BytesIO(raw), allow_pickle=False) as f:
            arrays: dict[str, np.ndarray] = {k: f[k] for k in f.files}
        return arrays
    array: np.ndarray = np.load(io.BytesIO(raw), allow_pickle=False)
    return array
