"""thesis_numbers.toml against the thesis's text, and the experiment specs against both.

The table checks parse shared/thesis.txt again: a table is the run of tab-separated lines just
above its "Table X.Y:" caption. Every printed number must be transcribed, in its printed line
and column order, with the printed string and the same value. The thesis's own claims (specs)
are then checked on the thesis's own numbers where a table holds the quantity.
"""
from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import pytest

from foolkit.experiments import CHECKS, EXPERIMENTS, MODELS, load_thesis_numbers
from foolkit.experiments.spec_types import ATTACKS
from foolkit.experiments.specs_stronger_part4 import STRONGER_AND_PART_IV

# Part III's experiments; STRONGER_AND_PART_IV (issues #21 / #22: stronger attacks, Part IV) has no thesis table
THESIS_EXPERIMENTS = [e for e in EXPERIMENTS if e not in STRONGER_AND_PART_IV]

THESIS = Path(__file__).resolve().parents[2].parent / "shared" / "thesis.txt"
NUMBERS = load_thesis_numbers()
TABLES = NUMBERS["tables"]
FIGURES = NUMBERS["figures"]
TABLE_IDS = ["table-11.4"] + [f"table-12.{i}" for i in range(1, 11)]
FIGURE_IDS = [f"figure-12.{i}" for i in range(1, 27)]
NUMBER = re.compile(r"^\d+(\.\d+)?$")


def _norm(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture(scope="module")
def thesis_lines() -> list[str]:
    if not THESIS.exists():
        pytest.skip(f"{THESIS} not found")
    return THESIS.read_text(encoding="utf-8").splitlines()


def _caption_index(lines: list[str], kind: str, number: str) -> int:
    hits = [i for i, line in enumerate(lines) if line.startswith(f"{kind} {number}:")]
    assert len(hits) == 1, f"{kind} {number}: {len(hits)} captions"
    return hits[0]


def _block(lines: list[str], number: str) -> tuple[str, list[list[str]]]:
    """(caption, the table's lines as cells): tab-separated lines just above the caption,
    up to the previous paragraph (a line without a tab) or caption."""
    i = _caption_index(lines, "Table", number)
    j = i - 1
    while j >= 0 and not lines[j].strip():
        j -= 1
    block = []
    while j >= 0 and "\t" in lines[j] and not re.match(r"^(Table|Figure) \d+\.\d+:", lines[j]):
        block.append([c.strip() for c in lines[j].split("\t")])
        j -= 1
    assert block, f"Table {number}: no tab-separated lines above the caption"
    return lines[i].split(":", 1)[1].strip(), block[::-1]


def _printed_rows(table: dict) -> list[list[str]]:
    names = [c["name"] for c in table["columns"]]
    return [[row["printed"][n] for n in names if n in row["printed"]] for row in table["rows"]]


@pytest.mark.parametrize("table_id", TABLE_IDS)
def test_table_matches_thesis(thesis_lines, table_id):
    table = TABLES[table_id]
    number = table_id.split("-", 1)[1]
    caption, block = _block(thesis_lines, number)
    assert table["id"] == table_id
    assert _norm(caption).startswith(_norm(table["caption"])), caption

    # every printed string parses to the stored value, and belongs to a declared column
    names = {c["name"] for c in table["columns"]}
    for row in table["rows"]:
        assert set(row["printed"]) <= names, row["printed"]
        for key, text in row["printed"].items():
            assert NUMBER.match(text), (key, text)
            assert float(text) == row[key], (row["model"], key, text, row[key])
            assert isinstance(row[key], int) == ("." not in text), (key, text)

    # the numeric cells of the printed lines, in order, are exactly the transcribed rows
    numeric = [[c for c in cells if NUMBER.match(c)] for cells in block]
    numeric_lines = [(cells, nums) for cells, nums in zip(block, numeric) if nums]
    if table.get("layout", "").startswith("transposed"):
        assert [nums for _, nums in numeric_lines] == [[r[0] for r in _printed_rows(table)]]
        header = block[0]
        assert [c for c in header if c in MODELS] == [r["model"] for r in table["rows"]]
        return
    assert [nums for _, nums in numeric_lines] == _printed_rows(table)

    # row labels: the first cell is the row's label; blank is a merged cell (same model as the
    # line above); a number means the table has no model column (the caption names the model)
    previous = None
    for (cells, _), row in zip(numeric_lines, table["rows"]):
        assert row["model"] in MODELS
        if NUMBER.match(cells[0]):
            assert row["model"] in caption
        elif cells[0]:
            assert cells[0] == row.get("label", row["model"]), (cells, row["model"])
        else:
            assert row["model"] == previous, (cells, row["model"])
        previous = row["model"]


def test_every_printed_number_is_transcribed(thesis_lines):
    """Counts: the numeric cells of all eleven tables (220 values and keys)."""
    total = sum(len(r["printed"]) for t in TABLES.values() for r in t["rows"])
    cells = 0
    for table_id in TABLE_IDS:
        _, block = _block(thesis_lines, table_id.split("-", 1)[1])
        cells += sum(1 for line in block for c in line if NUMBER.match(c))
    assert total == cells


@pytest.mark.parametrize("figure_id", FIGURE_IDS)
def test_figure_caption(thesis_lines, figure_id):
    figure = FIGURES[figure_id]
    i = _caption_index(thesis_lines, "Figure", figure_id.split("-", 1)[1])
    caption = thesis_lines[i].split(":", 1)[1].strip()
    assert _norm(caption).startswith(_norm(figure["caption"])), caption
    assert figure["kind"] in ("images", "plot", "images+plot")
    for key in ("shows", "models", "grid", "images"):
        assert figure[key], key


def test_toml_lists_exactly_the_part_iii_tables_and_figures():
    assert sorted(TABLES) == sorted(TABLE_IDS)
    assert sorted(FIGURES) == sorted(FIGURE_IDS)


def test_specs_cover_every_table_and_figure():
    tables = [t for e in EXPERIMENTS for t in e.tables]
    figures = [f for e in EXPERIMENTS for f in e.figures]
    assert sorted(set(tables)) == sorted(TABLE_IDS), set(TABLE_IDS) ^ set(tables)
    assert sorted(set(figures)) == sorted(FIGURE_IDS), set(FIGURE_IDS) ^ set(figures)
    assert len(tables) == len(set(tables)) and len(figures) == len(set(figures)), "an id in two experiments"


def test_spec_references_exist():
    ids = [e.id for e in EXPERIMENTS]
    assert len(ids) == len(set(ids))
    for e in THESIS_EXPERIMENTS:
        assert e.thesis_refs, e.id
        for ref in e.tables:
            assert ref in TABLES, (e.id, ref)
        for ref in e.figures:
            assert ref in FIGURES, (e.id, ref)
        for show in e.show:
            assert show.kind in ("table", "figure") and show.ref in e.thesis_refs, (e.id, show)
        assert e.reuses is None or e.reuses in ids
        for claim in e.claims:
            assert claim.check in CHECKS, (e.id, claim.check)
            assert claim.claim and claim.claim_text, e.id
            assert set(claim.models) <= set(MODELS), (e.id, claim.models)
            if claim.ref and not claim.ref.startswith(":"):
                table_id, column = claim.ref.split(":")
                assert column in {c["name"] for c in TABLES[table_id]["columns"]}, (e.id, claim.ref)
            if claim.check in ("argmax", "argmin"):
                assert claim.value in MODELS, (e.id, claim.value)
            if claim.check in ("order", "top"):
                assert set(claim.value) <= set(MODELS), (e.id, claim.value)


def test_claim_texts_are_the_thesis_own_words(thesis_lines):
    text = _norm(" ".join(thesis_lines))
    missing = [(e.id, c.claim_text) for e in THESIS_EXPERIMENTS for c in e.claims if _norm(c.claim_text) not in text]
    assert not missing, missing


def test_runs_use_foolkit_parameter_names():
    from foolkit.attacks import registry
    from foolkit.models import registry as models

    known_models = set(models.list_models())
    for e in THESIS_EXPERIMENTS:
        assert e.runs, e.id
        for model in e.models + e.evaluate_on:
            assert model in set(MODELS.values()) | {"imagenet/efficientnet-lite0"}, (e.id, model)
            if known_models is not None:
                assert model in known_models, (e.id, model)
        for run in e.runs:
            assert run.attack in ATTACKS and run.mode in ("sweep", "minimal", "fit"), (e.id, run)
            if run.attack == "clean":
                assert not run.params and not run.grid
                continue
            names = {p.name for p in registry.parameters(run.attack)} | {"target"}
            assert set(run.params) | set(run.grid) <= names, (e.id, set(run.params) | set(run.grid) - names)
            assert not set(run.params) & set(run.grid), e.id
            registry.create(run.attack, **{k: v for k, v in run.params.items()},
                            **{k: v[0] for k, v in run.grid.items() if k != "target"})
        n = e.images.n
        assert e.images.source in ("cifar10-test", "natural-images"), e.id
        assert e.images.quick_n <= (n or e.images.quick_n), e.id


def test_universal_radii_are_converted_from_normalised_units():
    from foolkit.experiments import get, thesis_xi

    assert get("universal-l2").runs[0].params["xi"] == pytest.approx(15 * 0.2009, abs=1e-3)
    assert get("universal-linf").runs[0].params["xi"] == pytest.approx(0.5 * 0.2009, abs=1e-4)
    assert thesis_xi(15) == pytest.approx(3.0135)
    for run in get("universal-xi").runs:
        assert run.grid["xi"] == tuple(thesis_xi(x) for x in run.thesis["xi"])


# ---------------------------------------------------------------- the claims on the thesis's numbers
SCALE = {"%": 0.01, "s": 1000.0, "ms": 1.0, "px": 1.0, "": 1.0}


def _column(table: dict, quantity: str) -> dict | None:
    cols = [c for c in table["columns"] if c["name"] == quantity] or \
           [c for c in table["columns"] if c.get("metric") == quantity]
    return cols[0] if len(cols) == 1 else None


def _values(table_id: str, quantity: str, at: dict | None = None) -> dict[str, list] | None:
    """model -> [(row, value)] in printed order, in comparable units (fractions, ms)."""
    table = TABLES[table_id]
    col = _column(table, quantity)
    keys = set(table["keys"]) | {c["name"] for c in table["columns"] if c.get("key")}
    if col is None or any(k not in keys for k in (at or {})):
        return None
    scale = 1.0 if quantity.endswith("_pct") else SCALE[col["unit"]]
    out = defaultdict(list)
    for row in table["rows"]:
        if col["name"] not in row:
            continue
        if any(row[k] not in (v if isinstance(v, tuple) else (v,)) for k, v in (at or {}).items()):
            continue
        out[row["model"]].append((row, row[col["name"]] * scale))
    return out


def _check(claim, table_id: str) -> bool | None:
    if claim.check == "visual" or (claim.ref or "").startswith(":"):
        return None
    if TABLES[table_id].get("layout", "").startswith("matrix"):
        return _check_matrix(claim, table_id)
    vals = _values(table_id, claim.quantity, dict(claim.at))
    if vals is None:
        return None
    models = claim.models or tuple(vals)
    one = {m: vals[m][0][1] for m in models if vals.get(m)}
    if claim.ref:
        ref_table, ref_col = claim.ref.split(":")
        ref = _values(ref_table, ref_col)
        other = {m: ref[m][0][1] for m in one if ref.get(m)}
    else:
        other = {m: claim.value for m in one}
    rank = lambda d: sorted(d, key=d.get, reverse=True)  # noqa: E731
    kind = claim.check
    if kind in ("increasing", "decreasing"):
        if claim.over not in TABLES[table_id]["keys"] + [c["name"] for c in TABLES[table_id]["columns"]]:
            return None
        sign = 1 if kind == "increasing" else -1
        for m in models:
            seq = [v for _, v in sorted(vals[m], key=lambda rv: rv[0][claim.over])]
            if not all(sign * (b - a) > 0 for a, b in zip(seq, seq[1:])):
                return False
        return True
    if kind == "less_than":
        return all(one[m] < other[m] for m in one)
    if kind == "greater_than":
        return all(one[m] > other[m] for m in one)
    if kind == "close_to":
        return all(abs(one[m] - other[m]) <= claim.tol + 1e-12 for m in one)
    if kind == "between":
        return all(claim.value[0] <= one[m] <= claim.value[1] for m in one)
    if kind == "argmax":
        return rank(one)[0] == claim.value
    if kind == "argmin":
        return rank(one)[-1] == claim.value
    if kind == "top":
        return set(rank(one)[:len(claim.value)]) == set(claim.value)
    if kind == "order":
        return tuple(rank(one)) == tuple(claim.value)
    if kind == "same_order":
        return rank(one) == rank(other)
    return None


def _check_matrix(claim, table_id: str) -> bool | None:
    rows = {r["model"]: {m: r[m] / 100 for m in MODELS} for r in TABLES[table_id]["rows"]}
    off = [rows[s][t] for s in rows for t in rows if s != t]
    if claim.check == "diagonal_dominates":
        return all(max(rows, key=lambda s: rows[s][t]) == t for t in rows)
    if claim.quantity == "min_offdiagonal":
        return min(off) < claim.value
    if claim.quantity == "transfer_mean":
        mean = {s: sum(rows[s][t] for t in rows if t != s) / 3 for s in rows}
        return tuple(sorted(mean, key=mean.get, reverse=True)) == tuple(claim.value)
    if claim.check == "greater_than" and claim.value is not None:
        return all(rows[s][t] > claim.value for s in rows for t in claim.models)
    if claim.at.get("diagonal") and claim.ref:
        ref = _values(*claim.ref.split(":"))
        return all(abs(rows[m][m] - ref[m][0][1]) <= claim.tol + 1e-12 for m in rows)
    return None


def test_claims_hold_on_the_thesis_numbers():
    checked, failed = 0, []
    for e in EXPERIMENTS:
        for claim in e.claims:
            for table_id in e.tables:
                result = _check(claim, table_id)
                if result is not None:
                    checked += 1
                    if not result:
                        failed.append((e.id, claim.claim))
    assert not failed, failed
    assert checked >= 40, checked
