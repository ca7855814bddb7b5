"""The method x source table: domain-adaptation methods side by side on the same data, seeds and schedule.

Each cell (method, source) trains, or reuses, one image-branch run per training seed and scores
it on the real test split as :mod:`aims_lib.statistics` scores everything: top-1 and macro
accuracy with 95 % bootstrap intervals (headline seed), per-seed values with their mean and sd,
the paired difference against source-only on the same images (paired bootstrap interval,
McNemar's exact p; named ``"<method> vs source-only, <level>, <source>"``) and the share of the
source-only-to-oracle gap it closes, the target oracle being source-only on the real training
labels. Notebook 02's Table 3 is this table of the paper's methods (source-only and LMMD) on
every source, notebook 05's adds the other methods, which may be restricted to fewer sources, as
a CPU budget needs (:attr:`aims_lib.profiles.Profile.uda_sources`).

Beside it, :func:`lambda_sweep`: one method's weight varied on one source (notebook 05's LMMD
weight), each run selected on real val like every other.

Sources: ``docs/references.md#uda-baselines``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Final

import numpy as np

from aims_lib import taxonomy
from aims_lib.adaptation import get_method
from aims_lib.data.format import AimsDataset, Sample
from aims_lib.image_branch.run_names import run_name
from aims_lib.image_branch.trainer import SOURCE_SPLITS, Level, predictions_of_run, profile_config, train_image_branch
from aims_lib.profiles import Profile
from aims_lib.records import SeedRuns, UdaCell, UdaMethods
from aims_lib.statistics import Accuracy, Comparison, SeedSummary, accuracy, gap_closed, paired_comparison, summarise_seeds

#: The methods of the paper's Table 3, every source always, by the keys its tables give their rows
#: (:data:`aims_lib.paper_tables.ROW_NAMES`).
PAPER_METHODS: Final[dict[str, str]] = {"source_only": "image", "lmmd": "image_lmmd"}
#: The source of the target oracle (source-only on the real training labels).
ORACLE_SOURCE: Final[str] = "real"


def comparison_plan(
    methods: Sequence[str], sources: Sequence[str], extra_sources: Sequence[str]
) -> dict[str, tuple[str, ...]]:
    """The sources of each method: every one of ``sources`` for the paper's methods, those also in
    ``extra_sources`` for the others."""
    for name, values in (("sources", sources), ("extra_sources", extra_sources)):
        bad = [s for s in values if s not in SOURCE_SPLITS or s == ORACLE_SOURCE]
        if bad:
            raise ValueError(f"{name}: {bad} are not adaptation sources (valid: synthetic, synthetic+real)")
    for m in methods:
        get_method(m)
    plan = {m: tuple(s for s in sources if m in PAPER_METHODS or s in extra_sources) for m in methods}
    empty = [m for m, srcs in plan.items() if not srcs]
    if empty:
        raise ValueError(f"extra_sources {list(extra_sources)} leave no source to the methods {empty}")
    return plan


@dataclass(frozen=True)
class Cell:
    """One setting over its training seeds: its accuracy, its runs (one per seed, the headline's
    first) and, for an adaptation method, its paired comparison with source-only on the same
    source and the share of the source-only-to-oracle gap it closes (None without an oracle)."""

    accuracy: SeedSummary
    runs: tuple[str, ...]
    vs_source_only: Comparison | None = None
    gap_closed: float | None = None

    def seed_runs(self) -> SeedRuns:
        return SeedRuns(**self.accuracy, runs=list(self.runs))

    def record(self) -> UdaCell:
        vs = None if self.vs_source_only is None else self.vs_source_only.to_dict()
        return UdaCell(**self.seed_runs(), gap_closed=self.gap_closed, vs_source_only=vs)


@dataclass(frozen=True)
class MethodComparison:
    """The table at one level: ``cells[method][source]`` and the target oracle (None when not
    asked for). ``metrics`` holds every run's metrics (:func:`train_image_branch`'s) by its name."""

    level: str
    seeds: tuple[int, ...]
    plan: dict[str, tuple[str, ...]]
    cells: dict[str, dict[str, Cell]]
    oracle: Cell | None
    metrics: dict[str, dict[str, Any]]

    def record(self, profile: str, budget: str) -> UdaMethods:
        """What ``results.json`` keeps (``uda_methods``); ``budget`` says why some methods ran on fewer sources."""
        titled = {"source_only": None, **self.plan}  # source-only also names the oracle's row
        return UdaMethods(
            level=self.level, seeds=list(self.seeds), plan={m: list(s) for m, s in self.plan.items()},
            cells={m: {s: c.record() for s, c in by_source.items()} for m, by_source in self.cells.items()},
            oracle=None if self.oracle is None else self.oracle.seed_runs(),
            titles={m: get_method(m).title for m in titled}, profile=profile, budget=budget,
        )

    @property
    def sources(self) -> tuple[str, ...]:
        """The sources of the plan, in its order."""
        return tuple(dict.fromkeys(s for srcs in self.plan.values() for s in srcs))

    def runs(self) -> dict[tuple[str, str, str, int], str]:
        """Every run's name by (level, source, method, training seed): seed by seed, the headline
        first; per source the plan's methods in its order; then the oracle."""
        out = {}
        for i, k in enumerate(self.seeds):
            for source in self.sources:
                for method, sources in self.plan.items():
                    if source in sources:
                        out[self.level, source, method, k] = self.cells[method][source].runs[i]
            if self.oracle is not None:
                out[self.level, ORACLE_SOURCE, "source_only", k] = self.oracle.runs[i]
        return out

    def paper_rows(self) -> dict[str, dict[str, SeedSummary]]:
        """The accuracies of the paper's methods as its tables key them: per source, ``image``
        (source-only) and ``image_lmmd``; the oracle as source ``real``."""
        rows = {source: {row: self.cells[m][source].accuracy for m, row in PAPER_METHODS.items()
                         if source in self.plan.get(m, ())} for source in self.sources}
        if self.oracle is not None:
            rows[ORACLE_SOURCE] = {PAPER_METHODS["source_only"]: self.oracle.accuracy}
        return rows

    def curves(self, source: str) -> dict[str, dict[str, Any]]:
        """The headline runs' metrics on ``source`` by method title (for the training curves)."""
        return {get_method(m).title: self.metrics[by_source[source].runs[0]] for m, by_source in self.cells.items()
                if source in by_source}

    def reading(self) -> str:
        """Per source: the adaptation method(s) with the best top-1 (all of a tie), and whether
        each one's paired interval against source-only excludes zero (as ``results.json`` rounds them)."""
        cells = {m: {s: c.record() for s, c in by_source.items()} for m, by_source in self.cells.items()}
        lines = []
        for source in self.sources:
            scored = {m: c[source] for m, c in cells.items() if source in c and c[source]["vs_source_only"]}
            if not scored:
                continue
            top = max(c["top1"] for c in scored.values())
            for method in (m for m, c in scored.items() if c["top1"] == top):
                c, vs = scored[method], scored[method]["vs_source_only"]
                sure = "excludes 0" if vs["low"] > 0 or vs["high"] < 0 else "includes 0: not distinguishable from source-only"
                gap = "" if c["gap_closed"] is None else f"; closes {c['gap_closed']:.0%} of the gap to the oracle"
                lines.append(f"{source}: best {get_method(method).title} {c['top1']:.1f} % [{c['top1_low']:.1f}, "
                             f"{c['top1_high']:.1f}], {vs['difference']:+.1f} points over source-only [{vs['low']:.1f}, "
                             f"{vs['high']:.1f}] (paired interval {sure}; McNemar p = {vs['p']:.3f}){gap}")
        return "\n".join(lines)


def table_rows(record: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Display rows of a :meth:`MethodComparison.record` (as ``results.json`` keeps it): one per
    cell, then the oracle's; accuracy, interval, difference to source-only, gap closed, seeds."""
    rows = []
    for method, by_source in record["cells"].items():
        for source, c in by_source.items():
            vs = c["vs_source_only"]
            diff = "–" if vs is None else f"{vs['difference']:+.1f} [{vs['low']:.1f}, {vs['high']:.1f}]"
            rows.append({
                "method": record["titles"][method], "source": source, "top-1 %": c["top1"],
                "95% CI": f"[{c['top1_low']:.1f}, {c['top1_high']:.1f}]", "macro %": c["macro"],
                "vs source-only (points)": diff,
                "McNemar p": "–" if vs is None else f"{vs['p']:.3f}",
                "gap closed": "–" if c["gap_closed"] is None else f"{c['gap_closed']:.2f}",
                "seeds": len(c["seeds"]),
            })
    o = record["oracle"]
    rows.append({"method": record["titles"]["source_only"], "source": "real (target oracle)", "top-1 %": o["top1"],
                 "95% CI": f"[{o['top1_low']:.1f}, {o['top1_high']:.1f}]", "macro %": o["macro"],
                 "vs source-only (points)": "–", "McNemar p": "–", "gap closed": "–", "seeds": len(o["seeds"])})
    return rows


def _real_test(dataset: AimsDataset, level: Level) -> tuple[list[Sample], np.ndarray, int]:
    """The real test split every run is scored on: its samples, their labels at ``level`` and the
    number of classes."""
    test = dataset.select("test", "real")
    num_classes = taxonomy.NUM_COARSE if level == "coarse" else taxonomy.NUM_FINE
    return test, np.array([getattr(s, f"{level}_id") for s in test]), num_classes


def compare_methods(
    dataset: AimsDataset, run_root: str | Path, profile: Profile, plan: Mapping[str, Sequence[str]], seeds: Sequence[int],
    level: Level = "coarse", method_settings: Mapping[str, Mapping[str, Any]] | None = None, oracle: bool = True,
    **settings: Any,
) -> MethodComparison:
    """Train (or reuse) the runs of ``plan`` (method -> sources, :func:`comparison_plan`) and, with
    ``oracle``, of the target oracle for every seed of ``seeds`` (the first is the headline), and
    score them.

    ``settings`` go to every run's config (backbone weights, device, ...); ``method_settings`` to
    one method's runs only (e.g. the LMMD weight and ramp of notebook 02, so that its runs are
    reused). Run names are :func:`~aims_lib.image_branch.run_names.run_name`'s, shared with notebooks 02 and 05.
    """
    if not seeds:
        raise ValueError("seeds: need at least one training seed (the headline first)")
    run_root, own = Path(run_root), method_settings or {}
    headline = seeds[0]
    test, labels, num_classes = _real_test(dataset, level)
    metrics: dict[str, dict[str, Any]] = {}

    def cell(method: str, source: str) -> tuple[Cell, np.ndarray]:
        extra = dict(own.get(method, {}))
        per_seed, names, correct = {}, [], None
        for k in seeds:
            name = run_name(level, source, method, extra.get("adaptation_weight"), None if k == headline else k)
            cfg = profile_config(profile, level, source, method, **{**settings, **extra, "seed": k})
            metrics[name] = train_image_branch(dataset, run_root / name, cfg)
            logits = predictions_of_run(run_root / name, test)
            per_seed[k] = accuracy(logits, labels, num_classes, seed=headline)
            names.append(name)
            if k == headline:
                correct = logits.argmax(1) == labels
        return Cell(summarise_seeds(per_seed, headline), tuple(names)), correct

    target = cell("source_only", ORACLE_SOURCE)[0] if oracle else None
    scored = {(m, s): cell(m, s) for m, sources in plan.items() for s in sources}
    cells: dict[str, dict[str, Cell]] = {}
    for (method, source), (scores, correct) in scored.items():
        base = scored.get(("source_only", source))
        if method != "source_only" and base is not None:
            title = get_method(method).title
            vs = paired_comparison(f"{title} vs source-only, {level}, {source}", "source-only", base[1], title, correct,
                                   seed=headline)
            gap = None if target is None else gap_closed(base[0].accuracy["top1"], scores.accuracy["top1"],
                                                         target.accuracy["top1"])
            scores = replace(scores, vs_source_only=vs, gap_closed=gap)
        cells.setdefault(method, {})[source] = scores
    return MethodComparison(level, tuple(seeds), {m: tuple(s) for m, s in plan.items()}, cells, target, metrics)


@dataclass(frozen=True)
class SweepPoint:
    """One run of :func:`lambda_sweep`: its weight and name, the real-val top-1 that selected its
    epoch, the trainer's real-test top-1 and the real-test accuracy with intervals."""

    weight: float
    run: str
    val_top1: float
    test_top1: float
    test: Accuracy
    best_epoch: int

    def record(self) -> dict[str, Any]:
        return {"lambda": self.weight, "run": self.run, "val_top1": self.val_top1, "test_top1": self.test_top1,
                "test": asdict(self.test), "best_epoch": self.best_epoch}

    def row(self) -> dict[str, Any]:
        """The display row."""
        return {"lambda": self.weight, "run": self.run, "real val": self.val_top1, "real test": self.test_top1,
                "real test 95% CI": f"[{self.test.top1_low:.1f}, {self.test.top1_high:.1f}]",
                "real test macro": self.test.macro, "best epoch": self.best_epoch}


def lambda_sweep(
    dataset: AimsDataset, run_root: str | Path, profile: Profile, weights: Sequence[float], source: str, seed: int,
    level: Level = "coarse", **settings: Any,
) -> list[SweepPoint]:
    """Train (or reuse) one run per adaptation weight on ``source``, LMMD (weight 0: the source-only
    run) with training seed ``seed``, and score each on the real test split. ``settings`` go to every
    run's config (ramp, backbone weights, device, ...); names are :func:`run_name`'s, so notebook
    02's runs of the same settings are reused."""
    run_root = Path(run_root)
    test, labels, num_classes = _real_test(dataset, level)
    points = []
    for weight in weights:
        method = "source_only" if weight == 0 else "lmmd"
        name = run_name(level, source, method, weight)
        m = train_image_branch(dataset, run_root / name,
                               profile_config(profile, level, source, method, adaptation_weight=weight, seed=seed, **settings))
        acc = accuracy(predictions_of_run(run_root / name, test), labels, num_classes, seed=seed)
        points.append(SweepPoint(weight, name, m["best_val_acc"], m["test_acc"], acc, m["best_epoch"]))
    return points


def chosen_weight(points: Sequence[SweepPoint]) -> float:
    """The weight whose run is best on real val (the first of a tie; runs without a val score skipped)."""
    scored = [p for p in points if not math.isnan(p.val_top1)]
    if not scored:
        raise ValueError("no run of the sweep has a real-val accuracy to choose by")
    return float(max(scored, key=lambda p: p.val_top1).weight)
