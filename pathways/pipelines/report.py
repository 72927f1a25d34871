"""Run reports: factors table, metrics, figures and a short markdown summary, with small-count suppression.

:func:`write_report` writes into one folder::

    report.md        summary: data counts, model, metrics, top drivers / signals, links to the files below
    metrics.json     the run's metrics
    factors.csv      factors table (source, target, lag_days, effect, ci_low, ci_high, method, n_* counts, ...,
                     source_label, target_label); factors.parquet: the same, typed
    signals.csv      signal table (drug-safety runs)
    code_counts.csv  events per code in the training data
    figures/         excitation_heatmap.png, excitation_graph.png, top_drivers.png, training_curve.png, signals.png,
                     calibration.png; with the training data: kernels.png, time_rescaling_qq.png, intensity.png

Codes carry readable labels (:class:`pathways.data.labels.CodeLabels`: the simulator's English catalogue, then the
ATC / ICD-10 / CCAM nomenclatures; OMOP concept names when the caller passes them). ``report.md`` keeps the few
columns a reader needs — cross-effects (what drives *other* events) apart from self-excitation (renewals), with
units — and the full tables are in the CSV / parquet files.

With ``min_cell_count=k`` every count below k (and above 0) is replaced by NaN in every table, and every column
from which such a count could be recomputed (estimates, intervals, standard errors, expected counts, p-values) is
blanked on those rows (``suppressed`` column = True; hidden cells in the heatmap), as publication rules for claims
data (e.g. SNDS: no cell under 10 patients or events) require: the rules live in :mod:`pathways.disclosure`.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from pathways.checkpoint import to_jsonable
from pathways.data.labels import CodeLabels, omop_concept_labels
from pathways.disclosure import count_columns, suppress, suppress_small_counts  # noqa: F401 (re-exported)
from pathways.errors import PathwaysInputError
from pathways.factors.graph import excitation_graph
from pathways.io.tabular import TableSet
from pathways.models.hawkes.base import HawkesBase
from pathways.pipelines.report_figures import report_figures
from pathways.synthetic.codes import ACTS, DIAGNOSES, DRUGS, OUTCOMES, STAYS
from pathways.utils import atomic_path

FACTOR_COLUMNS = ["source", "target", "lag_days", "effect", "ci_low", "ci_high", "method"]


@dataclass
class Report:
    """Paths written by :func:`write_report` (``files`` maps a short name to its path)."""

    directory: Path
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def markdown(self) -> Path:
        return self.files["report"]


# --------------------------------------------------------------------------------------------------------------
# tables
# --------------------------------------------------------------------------------------------------------------
def default_code_labels() -> CodeLabels:
    """Labels of reports: the simulator's English code catalogue first, then the shipped nomenclatures."""
    return CodeLabels(dict(DRUGS + DIAGNOSES + OUTCOMES + ACTS + STAYS))


def source_code_labels(data_node: Mapping[str, Any] | None, vocab: Any = None) -> dict[str, str]:
    """Labels the data source itself holds, for the codes of ``vocab``: OMOP concept names when the data node
    reads an OMOP CDM (``_target_: pathways.io.read_omop``) that has a ``concept`` table; ``{}`` otherwise.

    Only the concepts of the vocabulary are read (a semi-join in DuckDB), so a full vocabulary table stays on disk.
    """
    node = data_node or {}
    codes = [str(c) for c in getattr(vocab, "codes", [])] if vocab is not None else []
    if not str(node.get("_target_", "")).endswith("read_omop") or not codes:
        return {}
    with TableSet(node["source"], schema=node.get("schema")) as ts:
        if not ts.has("concept"):
            return {}
        ts.con.register("pw_wanted_codes", pd.DataFrame({"key": codes}))
        wanted = "(SELECT key FROM pw_wanted_codes)"
        frame = ts.con.execute(
            f"SELECT concept_id, concept_name, vocabulary_id, concept_code FROM {ts.ref('concept')} "
            f"WHERE CAST(vocabulary_id AS VARCHAR) || ':' || CAST(concept_code AS VARCHAR) IN {wanted} "
            f"OR CAST(concept_id AS VARCHAR) IN {wanted}").df()
    return omop_concept_labels(frame, codes=codes)


def add_labels(frame: pd.DataFrame, labels: CodeLabels, columns: Sequence[str]) -> pd.DataFrame:
    """A copy of ``frame`` with a ``<column>_label`` column after the others for each code column present."""
    out = frame.copy()
    for col in columns:
        if col in out.columns:
            out[f"{col}_label"] = labels.label(out[col])
    return out


def code_counts(data: Any, codes: Sequence[str] | None = None) -> pd.DataFrame:
    """Events and patients per code in ``data`` (Sequences or EventLog): columns code, n_events, n_patients."""
    marks = getattr(data, "marks", None)
    if marks is None:
        marks = getattr(data, "code", None)
    if marks is None:
        raise PathwaysInputError(f"argument 'data': {type(data).__name__} has neither 'marks' nor 'code'")
    marks = np.asarray(marks, dtype=np.int64)
    n_codes = int(getattr(data, "n_codes", 0) or (marks.max() + 1 if marks.size else 0))
    if codes is None:
        vocab = getattr(data, "vocab", None)
        codes = list(vocab.codes) if vocab is not None else [str(i) for i in range(n_codes)]
    offsets = getattr(data, "offsets", None)
    n_events = np.bincount(marks, minlength=n_codes)
    if offsets is not None:
        seq = np.repeat(np.arange(len(offsets) - 1), np.diff(np.asarray(offsets)))
        # distinct (patient, code) pairs, counted per code
        pairs = np.unique(seq.astype(np.int64) * n_codes + marks)
        n_patients = np.bincount(pairs % n_codes, minlength=n_codes)
    else:
        n_patients = np.full(n_codes, np.nan)
    return pd.DataFrame({"code": [str(c) for c in codes][:n_codes], "n_events": n_events[:n_codes],
                         "n_patients": n_patients[:n_codes]})


def hawkes_factors(model: Any, counts: pd.DataFrame | None = None, intervals: Any = None) -> pd.DataFrame:
    """Factors table of a fitted Hawkes model for reports: :func:`pathways.factors.excitation_graph`, one row per
    (source, target) in target-major order (the layout the excitation heatmap reshapes), with event counts.

    Intervals come from ``intervals`` (a ``HawkesIntervals``), else from ``model.confidence_intervals_`` when the
    model kept them (else NaN). ``counts`` (from :func:`code_counts`) fills ``n_source_events`` and
    ``n_target_events``, the basis of small-count suppression.
    """
    ci = intervals if intervals is not None else getattr(model, "confidence_intervals_", None)
    frame = excitation_graph(model, intervals=ci)
    position = {code: i for i, code in enumerate(np.asarray(model.codes_, dtype=object).astype(str))}
    key = frame["target"].astype(str).map(position) * len(position) + frame["source"].astype(str).map(position)
    frame = frame.iloc[np.argsort(key.to_numpy(), kind="stable")].reset_index(drop=True)
    if counts is not None:
        n = counts.set_index("code")["n_events"]
        frame["n_source_events"] = frame["source"].astype(str).map(n).to_numpy()
        frame["n_target_events"] = frame["target"].astype(str).map(n).to_numpy()
    return frame


def _jsonable_metrics(metrics: Mapping[str, Any]) -> dict[str, Any]:
    return to_jsonable(dict(metrics))


def markdown_table(frame: pd.DataFrame, max_rows: int = 20) -> str:
    if frame is None or frame.empty:
        return "_(empty)_"
    shown = frame.head(max_rows)

    def fmt(v: Any) -> str:
        if isinstance(v, (float, np.floating)):
            return "–" if not np.isfinite(v) else f"{v:.4g}"
        return str(v)

    cols = [str(c) for c in shown.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in shown.itertuples(index=False)]
    if len(frame) > max_rows:
        lines.append(f"\n_{len(frame) - max_rows} more rows in the CSV file._")
    return "\n".join(lines)


def _write_csv(frame: pd.DataFrame, path: Path) -> Path:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)
    return path


# --------------------------------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------------------------------
def write_report(out_dir: str | os.PathLike, *, title: str = "pathways run", model: Any = None,
                 metrics: Mapping[str, Any] | None = None, history: Sequence[Mapping[str, Any]] | None = None,
                 factors: pd.DataFrame | None = None, signals: pd.DataFrame | None = None,
                 counts: pd.DataFrame | None = None, summary: Mapping[str, Any] | None = None,
                 min_cell_count: int | None = None, top_k: int = 20, figures: bool = True,
                 labels: CodeLabels | Mapping[str, str] | None = None, data: Any = None) -> Report:
    """Write the report folder of a run (see the module docstring for its content).

    Parameters
    ----------
    out_dir : folder to write (created).
    title : heading of report.md.
    model : the fitted estimator (its class name is reported; Hawkes models give the heatmap).
    metrics : metric name -> value.
    history : per-epoch / per-iteration dicts (training curve).
    factors, signals : factors table / signal table.
    counts : events per code (:func:`code_counts`).
    summary : extra key -> value lines (data source, sizes, paths).
    min_cell_count : suppress counts below it (None: off).
    top_k : rows shown in the markdown tables and the top-drivers figure.
    figures : draw figures (needs matplotlib; skipped with a log line when it is absent).
    labels : code labels (a :class:`~pathways.data.labels.CodeLabels` or a code -> label mapping, e.g.
        :func:`~pathways.data.labels.omop_concept_labels`, consulted before the defaults);
        default :func:`default_code_labels`.
    data : the training data of a Hawkes model (Sequences): adds kernel, time-rescaling QQ and intensity figures.

    Returns
    -------
    :class:`Report` with the written paths.
    """
    directory = Path(out_dir)
    directory.mkdir(parents=True, exist_ok=True)
    report = Report(directory)
    metrics = _jsonable_metrics(metrics or {})
    with atomic_path(directory / "metrics.json") as tmp:
        tmp.write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    report.files["metrics"] = directory / "metrics.json"
    if not isinstance(labels, CodeLabels):
        labels = default_code_labels().with_labels(labels or {})
    counts = add_labels(counts, labels, ["code"]) if counts is not None else None
    factors = add_labels(factors, labels, ["source", "target"]) if factors is not None else None
    signals = add_labels(signals, labels, ["exposure", "outcome"]) if signals is not None else None

    if counts is not None:
        counts = suppress(counts, min_cell_count, "code_counts")
        report.files["code_counts"] = _write_csv(counts, directory / "code_counts.csv")
    if factors is not None:
        factors = suppress(factors, min_cell_count, "factors")
        report.files["factors"] = _write_csv(factors, directory / "factors.csv")
        report.files["factors_parquet"] = _write_parquet(factors, directory / "factors.parquet")
    if signals is not None:
        signals = suppress(signals, min_cell_count, "signals")
        report.files["signals"] = _write_csv(signals, directory / "signals.csv")
    if figures:
        names = _label_map(labels, model, factors)
        report.files.update(report_figures(directory / "figures", model, history, factors, signals, top_k,
                                           data=data, labels=names, min_cell_count=min_cell_count))
    lines = _markdown(title, model, metrics, factors, signals, counts, summary, min_cell_count, top_k, report)
    with atomic_path(directory / "report.md") as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    report.files["report"] = directory / "report.md"
    return report


def _label_map(labels: CodeLabels, model: Any, factors: pd.DataFrame | None) -> dict[str, str]:
    """code -> label for the codes a figure may name (the model's codes, else the factors' codes)."""
    codes = list(getattr(model, "codes_", None) if getattr(model, "codes_", None) is not None else [])
    if not codes and factors is not None:
        codes = pd.unique(pd.concat([factors["source"], factors["target"]]).astype(str)).tolist()
    return dict(zip([str(c) for c in codes], labels.label(codes)))


def _write_parquet(frame: pd.DataFrame, path: Path) -> Path:
    with atomic_path(path, suffix=".parquet") as tmp:
        frame.to_parquet(tmp, index=False)
    return path


_SIGNAL_READER_COLUMNS = ("rank", "exposure", "exposure_label", "outcome", "outcome_label", "method", "estimate",
                          "ci_low", "ci_high", "p_calibrated", "q", "n_exposed_events", "flag", "status", "suppressed")
_UNITS = ("Effect: expected number of extra target events directly triggered by one source event (the kernel "
          "integrated over all lags), with its 95 % interval; *half within* / *95 % within*: lags (days, the "
          "model's time unit) by which half / 95 % of those extra events have happened.")


def reader_factors(factors: pd.DataFrame, kind: str = "cross", k: int = 20) -> pd.DataFrame:
    """The few columns a reader needs, for the ``k`` largest whole-kernel effects of a factors table.

    ``kind="cross"``: what drives *other* codes (source != target); ``"self"``: self-excitation (renewals).
    Codes are written with their labels (``source_label``/``target_label`` columns when present).

    Examples
    --------
    >>> f = pd.DataFrame({"source": ["J069", "J069"], "target": ["C03CA01", "J069"], "effect": [0.3, 0.9],
    ...                   "source_label": ["acute upper respiratory infection"] * 2,
    ...                   "target_label": ["furosemide", "acute upper respiratory infection"]})
    >>> reader_factors(f).iloc[0, :2].tolist()
    ['J069 acute upper respiratory infection', 'C03CA01 furosemide']
    """
    whole = factors[factors["lag_days"].isna()] if "lag_days" in factors.columns else factors
    rows = whole.dropna(subset=["effect"])
    same = rows["source"].astype(str) == rows["target"].astype(str)
    rows = rows[~same if kind == "cross" else same].nlargest(int(k), "effect")

    def text(col: str) -> pd.Series:
        label = rows[f"{col}_label"].fillna("").astype(str) if f"{col}_label" in rows.columns else ""
        return (rows[col].astype(str) + " " + label).str.strip()

    out = pd.DataFrame({"driver" if kind == "cross" else "code": text("source")})
    if kind == "cross":
        out["target"] = text("target")
    out["effect"] = rows["effect"].to_numpy(float)
    if {"ci_low", "ci_high"} <= set(rows.columns):
        out["95 % interval"] = [f"{lo:.3g} – {hi:.3g}" if np.isfinite(lo) and np.isfinite(hi) else "–"
                                for lo, hi in zip(rows["ci_low"].to_numpy(float), rows["ci_high"].to_numpy(float))]
    for col, name in (("lag_50", "half within (days)"), ("lag_95", "95 % within (days)"),
                      ("n_source_events", "source events"), ("n_target_events", "target events")):
        if col in rows.columns:
            out[name] = rows[col].to_numpy(float)
    return out.reset_index(drop=True)


def _factor_sections(factors: pd.DataFrame, hawkes: bool, top_k: int) -> list[str]:
    cross, renewals = reader_factors(factors, "cross", top_k), reader_factors(factors, "self", top_k)
    lines = ["", f"## Top {len(cross)} cross-effects (what drives other events)", ""]
    lines += [_UNITS, ""] if hawkes else []
    lines += [markdown_table(cross, top_k)]
    if not renewals.empty:
        lines += ["", f"## Self-excitation (renewals): top {len(renewals)}", "",
                  "A code's effect on its own recurrence (refills, repeated visits), kept apart so that it does not "
                  + "hide the cross-effects.", "", markdown_table(renewals, top_k)]
    lines += ["", "_All columns and rows in [factors.parquet](factors.parquet) and [factors.csv](factors.csv)._"]
    return lines


def _markdown(title: str, model: Any, metrics: dict[str, Any], factors: pd.DataFrame | None,
              signals: pd.DataFrame | None, counts: pd.DataFrame | None, summary: Mapping[str, Any] | None,
              min_cell_count: int | None, top_k: int, report: Report) -> list[str]:
    lines = [f"# {title}", ""]
    if model is not None:
        lines.append(f"- model: `{type(model).__module__}.{type(model).__name__}`")
    for key, value in (summary or {}).items():
        lines.append(f"- {key}: {value}")
    if min_cell_count is not None:
        lines.append(f"- small-count suppression: counts below {int(min_cell_count)} are hidden")
    lines += ["", "## Metrics", "", markdown_table(pd.DataFrame(
        {"metric": list(metrics), "value": [metrics[k] for k in metrics]}), max_rows=100)]
    if factors is not None:
        lines += _factor_sections(factors, isinstance(model, HawkesBase), top_k)
    if signals is not None:
        shown = signals.sort_values("rank") if "rank" in signals.columns else signals
        keep = [c for c in _SIGNAL_READER_COLUMNS if c in shown.columns]
        lines += ["", "## Signals", "", markdown_table(shown[keep], top_k),
                  "", "_All columns in [signals.csv](signals.csv)._"]
    if counts is not None:
        lines += ["", "## Events per code (training data)", "",
                  markdown_table(counts.sort_values("n_events", ascending=False, na_position="last"), top_k)]
    files = {k: v for k, v in report.files.items()}
    if files:
        lines += ["", "## Files", ""]
        lines += [f"- {k}: [{p.relative_to(report.directory)}]({p.relative_to(report.directory)})"
                  for k, p in files.items()]
    return lines
