"""A queryable index of run folders: one SQLite file beside the runs.

The folders are the truth and the index is a cache of them: every query first syncs it
with the folders under the root (new or changed runs are read, vanished ones dropped),
so runs written by any command, copied in from another machine or deleted by hand are
always listed correctly, and ``rebuild`` recreates the file from nothing. SQLite from the
standard library, not DuckDB: one small file, no extra dependency, and safe for several
processes writing at once (the sweep's workers).

A run folder is any folder holding ``metrics.json`` and ``config.yaml`` (a multi-strategy
run's top folder holds neither; its per-strategy sub-folders are the runs).
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from engine.configs import did_you_mean
from engine.errors import ConfigError

INDEX_NAME = "index.sqlite"

# Metrics copied from metrics.json (with costs) into columns, so they can be filtered.
METRIC_COLUMNS = ("total_return", "cagr", "sharpe", "sortino", "max_drawdown", "calmar",
                  "volatility", "win_rate_periods", "win_rate_trades", "n_trades",
                  "turnover", "exposure", "psr", "alpha", "beta", "information_ratio",
                  "benchmark_total_return")
TEXT_COLUMNS = ("path", "scenario", "label", "strategy", "kind", "created_at",
                "data_source", "start", "end", "benchmark")
COLUMNS = (*TEXT_COLUMNS, "n_bars", *METRIC_COLUMNS)

_AS_RUN_AT = re.compile(r"as run at (\S+);")


@dataclass(frozen=True)
class IndexSync:
    added: int
    updated: int
    removed: int
    total: int


class RunIndex:
    """The index of the run folders under ``root`` (kept in ``root/index.sqlite``)."""

    def __init__(self, root: str | os.PathLike[str] = "runs") -> None:
        self.root = Path(root)
        self.path = self.root / INDEX_NAME

    # -- writing -------------------------------------------------------------------------

    def sync(self) -> IndexSync:
        """Bring the index in line with the folders: read new or changed runs, drop gone."""
        if not self.root.is_dir():
            raise ConfigError(f"runs folder {self.root} does not exist; pass --root with the "
                              "folder your runs are written to (default: runs)")
        found = {str(p.relative_to(self.root)): p for p in _run_folders(self.root)}
        with self._connect() as db:
            known = dict(db.execute("SELECT path, mtime FROM runs").fetchall())
            added = updated = 0
            for rel, folder in found.items():
                mtime = _mtime(folder)
                if rel in known and abs(known[rel] - mtime) < 1e-6:
                    continue
                row = read_run(folder, self.root)
                if row is None:
                    continue
                row["mtime"] = mtime
                columns = ", ".join(f'"{c}"' for c in row)
                marks = ", ".join("?" for _ in row)
                db.execute(f"INSERT OR REPLACE INTO runs ({columns}) VALUES ({marks})",
                           list(row.values()))
                added += rel not in known
                updated += rel in known
            gone = [rel for rel in known if rel not in found]
            db.executemany("DELETE FROM runs WHERE path = ?", [(rel,) for rel in gone])
            total = db.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
        return IndexSync(added, updated, len(gone), total)

    def rebuild(self) -> IndexSync:
        """Delete the index file and read every run folder again."""
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        return self.sync()

    # -- reading -------------------------------------------------------------------------

    def query(self, where: list[str] | tuple[str, ...] = (), *, order_by: str | None = None,
              descending: bool = True, limit: int | None = None,
              sync: bool = True) -> list[dict[str, Any]]:
        """Runs matching every ``where`` term (``key<op>value``), optionally sorted."""
        if sync:
            self.sync()
        clauses, values = [], []
        for term in where:
            clause, value = parse_filter(term)
            clauses.append(clause)
            values.append(value)
        sql = f"SELECT {', '.join(_quoted(COLUMNS))}, params FROM runs"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        if order_by is not None:
            _check_column(order_by, "sort by")
            sql += f' ORDER BY "{order_by}" IS NULL, "{order_by}" {"DESC" if descending else "ASC"}'
        else:
            sql += " ORDER BY created_at DESC, path"
        if limit is not None:
            if limit < 1:
                raise ConfigError(f"--limit must be at least 1, got {limit}")
            sql += f" LIMIT {int(limit)}"
        with self._connect() as db:
            cursor = db.execute(sql, values)
            names = [d[0] for d in cursor.description]
            rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        for row in rows:
            row["params"] = json.loads(row["params"]) if row["params"] else {}
        return rows

    def show(self, path: str) -> dict[str, Any]:
        """One run by its path under the root (or a unique suffix of it)."""
        self.sync()
        with self._connect() as db:
            paths = [r[0] for r in db.execute("SELECT path FROM runs").fetchall()]
        wanted = str(Path(path)).rstrip("/")
        exact = [p for p in paths if p == wanted or str(self.root / p) == wanted]
        matches = exact or [p for p in paths if p.endswith(wanted)]
        if len(matches) != 1:
            hint = (f"; {len(matches)} runs end with it: {matches[:5]}" if matches
                    else did_you_mean(wanted, paths))
            raise ConfigError(f"no single run {path!r} under {self.root}{hint}")
        (row,) = self.query([f"path={matches[0]}"], sync=False)
        return row

    # -- internals -----------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        self.root.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=30)
        db.execute("PRAGMA journal_mode=WAL")
        columns = ", ".join(
            [f'"{c}" TEXT' for c in TEXT_COLUMNS if c != "path"]
            + ['"n_bars" INTEGER'] + [f'"{c}" REAL' for c in METRIC_COLUMNS])
        db.execute(f'CREATE TABLE IF NOT EXISTS runs (path TEXT PRIMARY KEY, {columns}, '
                   'params TEXT, mtime REAL)')
        return _Connection(db)


class _Connection:
    """sqlite3 connection as a context manager that commits *and* closes."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> sqlite3.Connection:
        return self._db

    def __exit__(self, kind, exc, tb) -> None:
        with closing(self._db):
            if kind is None:
                self._db.commit()
            else:
                self._db.rollback()


def read_run(folder: Path, root: Path) -> dict[str, Any] | None:
    """The index row of one run folder, or None when its files cannot be read."""
    try:
        metrics = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
        config_text = (folder / "config.yaml").read_text(encoding="utf-8")
        config = yaml.safe_load(config_text) or {}
    except (OSError, ValueError, yaml.YAMLError):
        return None
    with_costs = metrics.get("with_costs", metrics)
    settings = metrics.get("settings", {})
    strategy = config.get("strategy") or {}
    stamp = _AS_RUN_AT.search(config_text.splitlines()[0] if config_text else "")
    rel = folder.relative_to(root)
    kind = "sweep" if "runs" in rel.parts[:-1] and (
        folder.parent.parent / "sweep.yaml").is_file() else str(metrics.get("kind", "run"))
    row: dict[str, Any] = {
        "path": str(rel),
        "scenario": config.get("name"),
        "label": strategy.get("label") or strategy.get("name") or settings.get("strategy"),
        "strategy": strategy.get("name") or settings.get("strategy"),
        "kind": kind,
        "created_at": stamp.group(1) if stamp else None,
        "data_source": (config.get("data") or {}).get("source"),
        "start": settings.get("start"),
        "end": settings.get("end"),
        "benchmark": settings.get("benchmark"),
        "n_bars": settings.get("n_bars"),
    }
    for name in METRIC_COLUMNS:
        value = with_costs.get(name)
        row[name] = float(value) if isinstance(value, int | float) else None
    params = {"strategy": strategy.get("config", {}), "costs": config.get("costs", {})}
    row["params"] = json.dumps(params, default=str, sort_keys=True)
    return row


def parse_filter(term: str) -> tuple[str, Any]:
    """``sharpe>0.5``, ``scenario=quickstart``, ``label!=topk``, ``path~sweep`` (contains)
    -> a parameterised SQL clause and its value. Never raw SQL from the user."""
    match = re.fullmatch(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*(>=|<=|!=|=|>|<|~)\s*(.*?)\s*", term)
    if match is None:
        raise ConfigError(
            f"filter {term!r} is not KEY OP VALUE; use =, !=, >, >=, <, <= or ~ (contains), "
            "e.g. --where 'sharpe>0.5' --where scenario=quickstart"
        )
    key, op, text = match.groups()
    _check_column(key, "filter on")
    if op == "~":
        return f'"{key}" LIKE ?', f"%{text}%"
    if key in TEXT_COLUMNS:
        if op in (">", ">=", "<", "<=") and key not in ("created_at", "start", "end"):
            raise ConfigError(f"{key} is text; compare it with =, != or ~, not {op}")
        return f'"{key}" {op} ?', text
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"filter {term!r}: {key} is a number; {text!r} is not") from None
    return f'"{key}" {op} ?', value


def _check_column(key: str, what: str) -> None:
    if key not in COLUMNS:
        raise ConfigError(f"cannot {what} {key!r}{did_you_mean(key, COLUMNS)}; columns: "
                          f"{', '.join(COLUMNS)}")


def _quoted(names) -> list[str]:
    return [f'"{n}"' for n in names]


def _mtime(folder: Path) -> float:
    return max((folder / name).stat().st_mtime for name in ("metrics.json", "config.yaml"))


def _run_folders(root: Path):
    for dirpath, dirnames, filenames in os.walk(root):
        # staging folders of runs in progress are hidden (".name.partial-xxxx")
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        if "metrics.json" in filenames and "config.yaml" in filenames:
            yield Path(dirpath)
