"""`madn report`: compare similarity-loss variants from MLflow alone.

Reads the experiment's latest sweep (or a given sweep run) and its trial runs, and writes to
`out_dir`:
- `trials.csv`: one row per trial (parameters, outcome, epochs done, last objective);
- `summary.csv` / the report table: per similarity metric (and per baseline variant) the number
  of trials, how many finished, the best and the median objective;
- `objective_vs_lambda.png` (log lambda_sim, coloured by metric, baselines as dashed lines,
  trials ASHA stopped early hollow, the No MAR 0 dB line for score metrics) and
  `objective_vs_sigma.png` (LNCC trials);
- `learning_curves.png`: the objective per epoch of every trial (a cross where ASHA stopped it);
- parameter importances (Optuna's fANOVA over the MADN trials' parameters present in all of
  them), when at least 3 trials have an objective;
- `best_trial_samples.png`: the best trial's last sample grid;
- `report.md`, all of the above; the folder is also logged to the sweep run as `report/`.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

from pipelines.io.atomic import write_text_atomic
from pipelines.io.figures import save_figure
from tune import tracking
from tune.errors import ServiceError

COLOURS = {"lncc": "tab:blue", "cc": "tab:orange", "nmi": "tab:green"}


class ReportError(ServiceError):
    """The experiment has nothing to report; the message says why."""


def trials_frame(uri: str, experiment_id: str, sweep: str, metric: str) -> pd.DataFrame:
    """One row per trial run of `sweep`: run_id, name, group, parameters, outcome, objective."""
    runs = tracking.trial_runs(uri, experiment_id, sweep)
    rows = []
    for run in runs:
        params = run.data.params
        variant = params.get("variant", "madn")
        similarity = params.get("similarity", "") if variant == "madn" else ""
        value = run.data.metrics.get(metric, math.nan)
        rows.append(
            {
                "run_id": run.info.run_id,
                "trial": run.info.run_name,
                "variant": variant,
                "similarity": similarity,
                "group": similarity if variant == "madn" else f"{variant} (baseline)",
                "lambda_sim": float(params["lambda_sim"]) if "lambda_sim" in params else math.nan,
                "sigma": float(params["sigma"]) if "sigma" in params else math.nan,
                "lr": float(params["lr"]) if "lr" in params else math.nan,
                "base_channels": params.get("base_channels", ""),
                "outcome": run.data.tags.get(tracking.OUTCOME, "running"),
                "epochs_done": int(run.data.metrics.get("epoch", 0)),
                "node": run.data.tags.get("madn.node", ""),
                "objective": value,
            }
        )
    return pd.DataFrame(rows)


def summarise(trials: pd.DataFrame, mode: str) -> pd.DataFrame:
    rows = []
    for group, part in trials.groupby("group", sort=True):
        values = part["objective"].dropna()
        best = (values.max() if mode == "max" else values.min()) if len(values) else math.nan
        rows.append(
            {
                "group": group,
                "trials": len(part),
                "finished": int((part["outcome"] == "finished").sum()),
                "stopped_early": int((part["outcome"] == "stopped_early").sum()),
                "failed": int((part["outcome"] == "error").sum()),
                "best": float(best),
                "median": float(values.median()) if len(values) else math.nan,
            }
        )
    return pd.DataFrame(rows)


def importances(trials: pd.DataFrame, mode: str) -> dict[str, float]:
    """fANOVA importances over MADN trials with an objective (parameters present in all)."""
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    madn = trials[(trials["variant"] == "madn") & trials["objective"].notna()]
    if len(madn) < 3:
        return {}
    distributions: dict[str, Any] = {}
    if madn["similarity"].nunique() > 1:
        distributions["similarity"] = CategoricalDistribution(sorted(set(madn["similarity"])))
    for name in ("lambda_sim", "sigma", "lr"):
        values = madn[name]
        if values.notna().all() and values.nunique() > 1:
            low, high = float(values.min()), float(values.max())
            distributions[name] = FloatDistribution(low, high, log=low > 0)
    if not distributions:
        return {}
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize" if mode == "max" else "minimize")
    for _, row in madn.iterrows():
        study.add_trial(
            optuna.trial.create_trial(
                params={k: row[k] for k in distributions},
                distributions=distributions,
                value=float(row["objective"]),
            )
        )
    evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
    return dict(optuna.importance.get_param_importances(study, evaluator=evaluator))


def _no_mar_line(ax: Any, metric: str) -> None:
    """The 0 dB line of a score metric (its value for No MAR, the uncorrected input)."""
    if metric.endswith("score"):
        ax.axhline(0.0, color="k", linewidth=1.2)
        ax.annotate(
            "No MAR (0 dB)",
            (0.99, 0.0),
            xycoords=("axes fraction", "data"),
            fontsize=7,
            ha="right",
            va="bottom",
        )


def _scatter(trials: pd.DataFrame, x: str, path: Path, metric: str, log: bool) -> Path:
    """`metric` vs parameter `x` per MADN trial, coloured by similarity; trials ASHA stopped
    early are hollow; baselines as dashed lines; the No MAR line for score metrics."""
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    madn = trials[trials["variant"] == "madn"]
    for similarity, part in madn.groupby("similarity"):
        part = part[part[x].notna()]
        colour = COLOURS.get(similarity)
        stopped = part["outcome"] == "stopped_early"
        if (~stopped).any():
            done = part[~stopped]
            ax.scatter(done[x], done["objective"], label=similarity, color=colour)
        if stopped.any():
            early = part[stopped]
            ax.scatter(early[x], early["objective"], facecolors="none", edgecolors=colour)
    if (madn["outcome"] == "stopped_early").any():
        ax.scatter([], [], facecolors="none", edgecolors="0.3", label="stopped early (ASHA)")
    for _, row in trials[trials["variant"] != "madn"].iterrows():
        if math.isfinite(row["objective"]):
            ax.axhline(row["objective"], linestyle="--", color="0.4", linewidth=1)
            ax.annotate(
                row["group"],
                (0.01, row["objective"]),
                xycoords=("axes fraction", "data"),
                fontsize=7,
                color="0.3",
                va="bottom",
            )
    _no_mar_line(ax, metric)
    if log:
        ax.set_xscale("log")
    ax.set_xlabel(x)
    ax.set_ylabel(metric)
    ax.legend(title="similarity", fontsize=8)
    ax.set_title(f"{metric} vs {x}", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


def learning_curves(client: Any, trials: pd.DataFrame, metric: str, path: Path) -> Path:
    """`metric` per epoch of every trial (MLflow metric history), coloured by group: a cross
    where ASHA stopped a trial early, a dot where a finished trial ended; the No MAR line."""
    fig, ax = plt.subplots(figsize=(6.5, 4.0))
    groups = list(dict.fromkeys(trials["group"]))
    palette = {g: COLOURS.get(g, f"C{3 + i}") for i, g in enumerate(groups)}
    for _, row in trials.iterrows():
        history = tracking.with_retries(client.get_metric_history, row["run_id"], metric)
        points = sorted((m.step, m.value) for m in history if math.isfinite(m.value))
        if not points:
            continue
        steps, values = zip(*points, strict=True)
        colour = palette[row["group"]]
        ax.plot(steps, values, color=colour, linewidth=1, alpha=0.8)
        marker = "x" if row["outcome"] == "stopped_early" else "o"
        ax.plot(steps[-1], values[-1], marker=marker, color=colour, markersize=5)
    for group in groups:
        ax.plot([], [], color=palette[group], label=group)
    ax.plot([], [], "x", color="0.3", label="stopped early (ASHA)")
    _no_mar_line(ax, metric)
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric)
    ax.legend(fontsize=7)
    ax.set_title(f"learning curves: {metric} per trial", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


def _markdown(frame: pd.DataFrame, digits: int = 3) -> str:
    header = "| " + " | ".join(frame.columns) + " |"
    lines = [header, "|" + "---|" * len(frame.columns)]
    for _, row in frame.iterrows():
        cells = [
            f"{v:.{digits}f}"
            if isinstance(v, float) and math.isfinite(v)
            else ("n/a" if isinstance(v, float) else str(v))
            for v in row
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _fanova(trials: Any, mode: str) -> tuple[dict[str, float], str]:
    """(importances, note why there are none)."""
    try:
        weights = importances(trials, mode)
        return weights, "" if weights else "fewer than 3 MADN trials with an objective"
    except Exception as error:  # fANOVA can fail on degenerate data; say so in the report
        return {}, f"not computed ({type(error).__name__}: {error})"


def _copy_best_samples(client: Any, uri: str, run_id: str, target: Path) -> None:
    """The best trial's last samples image to `target`; a missing image is not an error."""
    import mlflow.artifacts

    try:
        listed = client.list_artifacts(run_id, "samples")
        if listed:
            with tempfile.TemporaryDirectory(prefix="madn-report-") as folder:
                local = mlflow.artifacts.download_artifacts(
                    run_id=run_id,
                    artifact_path=sorted(a.path for a in listed)[-1],
                    dst_path=folder,
                    tracking_uri=uri,
                )
                shutil.copyfile(local, target)
    except Exception:  # a missing image does not stop the report
        pass


def _best_line(best: Any, metric: str) -> list[str]:
    settings = ", ".join(
        f"{k}={best[k]:.4g}" if isinstance(best[k], float) else f"{k}={best[k]}"
        for k in ("variant", "similarity", "lambda_sim", "sigma")
        if not (isinstance(best[k], float) and math.isnan(best[k])) and best[k] != ""
    )
    return [
        f"**Best trial**: {best['trial']} ({settings}): {metric} = "
        f"{best['objective']:.4f}, run `{best['run_id']}`.",
        "",
    ]


def _report_lines(
    header: tuple[str, str, str], summary: Any, trials: Any, best: Any, fanova: tuple, out: Path
) -> list[str]:
    """report.md's lines; header: (title, source line naming objective and run, metric)."""
    title, source, metric = header
    lines = [title, "", source, "", "## By similarity metric (baselines beside them)", ""]
    lines += [_markdown(summary), ""]
    if best is not None:
        lines += _best_line(best, metric)
    lines += ["## Parameter importances (fANOVA, MADN trials)", ""]
    weights, note = fanova
    if weights:
        lines += ["| parameter | importance |", "|---|---|"]
        lines += [f"| {k} | {v:.3f} |" for k, v in weights.items()]
    else:
        lines.append(f"n/a: {note}")
    shown = trials[["trial", "group", "lambda_sim", "sigma", "outcome", "epochs_done", "objective"]]
    lines += ["", "## Trials", "", _markdown(shown), "", "## Figures", ""]
    lines.append("![learning curves](learning_curves.png)")
    lines.append("![objective vs lambda](objective_vs_lambda.png)")
    if (out / "objective_vs_sigma.png").exists():
        lines.append("![objective vs sigma](objective_vs_sigma.png)")
    if (out / "best_trial_samples.png").exists():
        lines.append("![best trial samples](best_trial_samples.png)")
    return lines


def build_report(
    experiment: str,
    out_dir: str | os.PathLike[str],
    tracking_uri: str | None = None,
    metric: str = "val/score",
    mode: str = "max",
    sweep_run_id: str | None = None,
    log_to_sweep: bool = True,
    workdir: str = ".",
) -> Path:
    """Write the report (module doc) and return the path of report.md."""
    uri = tracking.connect(tracking_uri, workdir, create=False)
    client = tracking.client(uri)
    experiment_id, sweep_run = tracking.latest_sweep_run(uri, experiment)
    if sweep_run_id:
        sweep_run = client.get_run(sweep_run_id)
    sweep = sweep_run.data.tags[tracking.SWEEP]
    trials = trials_frame(uri, experiment_id, sweep, metric)
    if trials.empty:
        raise ReportError(f"sweep {sweep!r} has no trial runs")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    trials = trials.sort_values("objective", ascending=mode != "max", na_position="last")
    trials.to_csv(out / "trials.csv", index=False)
    summary = summarise(trials, mode)
    summary.to_csv(out / "summary.csv", index=False)
    _scatter(trials, "lambda_sim", out / "objective_vs_lambda.png", metric, log=True)
    if trials["sigma"].notna().any():
        _scatter(trials, "sigma", out / "objective_vs_sigma.png", metric, log=False)
    learning_curves(client, trials, metric, out / "learning_curves.png")
    scored = trials[trials["objective"].notna()]
    best = scored.iloc[0] if len(scored) else None
    if best is not None:
        _copy_best_samples(client, uri, best["run_id"], out / "best_trial_samples.png")
    source = (
        f"Objective: `{metric}` ({'higher' if mode == 'max' else 'lower'} is better), the value "
        f"at each trial's last epoch. Source: MLflow `{uri}`, sweep run "
        f"`{sweep_run.info.run_id}`."
    )
    title = f"# Sweep report: {experiment} / {sweep}"
    header = (title, source, metric)
    lines = _report_lines(header, summary, trials, best, _fanova(trials, mode), out)
    report = write_text_atomic(out / "report.md", "\n".join(lines) + "\n")
    if log_to_sweep:
        tracking.with_retries(client.log_artifacts, sweep_run.info.run_id, str(out), "report")
    return report
