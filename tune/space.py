"""The sweep's search space as configuration: what Optuna samples and which fixed trials run.

A space is a mapping (the `space:` section of a sweep YAML file), for example::

    similarity: [lncc, cc, nmi]              # categorical
    lambda_sim: {low: 0.01, high: 10, log: true}
    sigma: {low: 1.5, high: 8.0, when: {similarity: lncc}}   # conditional (define-by-run)
    lr: {low: 1.0e-4, high: 1.0e-3, log: true}               # optional
    base_channels: [8, 16]                                   # optional

Each entry is a list (categorical) or a {low, high[, log][, step][, when]} range; integers for
both bounds (and no log) give an integer parameter. `when: {param: value}` samples the
parameter only for trials whose earlier parameter has that value (Optuna define-by-run; order
matters: conditions refer to entries above). Names are `madn train` keys (`similarity`,
`lambda_sim`, `sigma`, `lr`, `base_channels`, `num_res`, `batch_size`, ...).

Fixed trials (the `baselines:` section) are complete settings run once each beside the search,
so every sweep compares against e.g. `{variant: multichannel}`; they are not fed to Optuna.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

DEFAULT_SPACE: dict[str, Any] = {
    "similarity": ["lncc", "cc", "nmi"],
    "lambda_sim": {"low": 0.01, "high": 10.0, "log": True},
    "sigma": {"low": 1.5, "high": 8.0, "when": {"similarity": "lncc"}},
}
DEFAULT_BASELINES: tuple[dict[str, Any], ...] = ({"variant": "multichannel"},)
TUNABLE = {
    "similarity",
    "lambda_sim",
    "sigma",
    "lr",
    "base_channels",
    "num_res",
    "batch_size",
    "variant",
}


class SpaceError(ValueError):
    """A search space entry is malformed; the message names it."""


@dataclass(frozen=True)
class Parameter:
    """One searched parameter: `choices` (categorical) or a `low`..`high` range."""

    name: str
    choices: tuple[Any, ...] | None = None
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    integer: bool = False
    when: Mapping[str, Any] = field(default_factory=dict)

    def applies(self, sampled: Mapping[str, Any]) -> bool:
        return all(sampled.get(key) == value for key, value in self.when.items())

    def suggest(self, trial: Any) -> Any:
        """Sample with an Optuna trial (ask interface)."""
        if self.choices is not None:
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.integer:
            return trial.suggest_int(
                self.name, int(self.low), int(self.high), step=int(self.step or 1), log=self.log
            )
        return trial.suggest_float(self.name, self.low, self.high, log=self.log, step=self.step)


def _parameter(name: str, spec: Any) -> Parameter:
    where = f"search space entry {name!r}"
    if name not in TUNABLE:
        raise SpaceError(
            f"{where}: not a tunable setting (choose from {', '.join(sorted(TUNABLE))})"
        )
    if isinstance(spec, (list, tuple)):
        if not spec:
            raise SpaceError(f"{where}: an empty list of choices")
        return Parameter(name, choices=tuple(spec))
    if not isinstance(spec, Mapping) or "low" not in spec or "high" not in spec:
        raise SpaceError(f"{where}: expected a list of choices or a mapping with low and high")
    unknown = set(spec) - {"low", "high", "log", "step", "when"}
    if unknown:
        raise SpaceError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    low, high = spec["low"], spec["high"]
    if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in (low, high)):
        raise SpaceError(f"{where}: low and high must be finite numbers, got {low!r}, {high!r}")
    if low >= high:
        raise SpaceError(f"{where}: low {low} must be below high {high}")
    log = bool(spec.get("log", False))
    if log and low <= 0:
        raise SpaceError(f"{where}: a log range needs low > 0, got {low}")
    when = spec.get("when", {})
    if not isinstance(when, Mapping):
        raise SpaceError(f"{where}: `when` must be a mapping like {{similarity: lncc}}")
    integer = isinstance(low, int) and isinstance(high, int) and not isinstance(low, bool)
    return Parameter(
        name,
        low=low,
        high=high,
        log=log,
        step=spec.get("step"),
        integer=integer,
        when=dict(when),
    )


@dataclass(frozen=True)
class DefineByRun:
    """Samples the parameters in order, skipping those whose `when` does not hold."""

    parameters: tuple[Parameter, ...]

    def __call__(self, trial: Any) -> None:
        sampled: dict[str, Any] = {}
        for parameter in self.parameters:
            if parameter.applies(sampled):
                sampled[parameter.name] = parameter.suggest(trial)


@dataclass(frozen=True)
class SearchSpace:
    """Searched parameters in order, and the fixed baseline trials."""

    parameters: tuple[Parameter, ...]
    baselines: tuple[dict[str, Any], ...] = DEFAULT_BASELINES

    @classmethod
    def from_config(
        cls,
        space: Mapping[str, Any] | None = None,
        baselines: Sequence[Mapping[str, Any]] | None = None,
    ) -> SearchSpace:
        space = DEFAULT_SPACE if space is None else space
        if not isinstance(space, Mapping) or not space:
            raise SpaceError("the search space must be a non-empty mapping of parameters")
        parameters = tuple(_parameter(str(name), spec) for name, spec in space.items())
        seen: set[str] = set()
        for parameter in parameters:
            missing = [key for key in parameter.when if key not in seen]
            if missing:
                raise SpaceError(
                    f"search space entry {parameter.name!r}: `when` refers to "
                    f"{', '.join(missing)}, which must be listed above it"
                )
            seen.add(parameter.name)
        fixed = tuple(dict(b) for b in (DEFAULT_BASELINES if baselines is None else baselines))
        for trial in fixed:
            unknown = set(trial) - TUNABLE
            if unknown:
                raise SpaceError(
                    f"baseline trial {trial}: unknown setting(s) {', '.join(sorted(unknown))}"
                )
        return cls(parameters, fixed)

    def define_by_run(self) -> Callable[[Any], None]:
        """The function OptunaSearch calls with each Optuna trial (conditional parameters);
        picklable, since Tune saves the searcher with the sweep."""
        return DefineByRun(self.parameters)

    def covering_points(self) -> list[dict[str, Any]]:
        """First trials that try each choice of the first categorical parameter once (e.g. each
        similarity metric), so that a short sweep still covers them all."""
        for parameter in self.parameters:
            if parameter.choices is not None and not parameter.when:
                return [{parameter.name: choice} for choice in parameter.choices]
        return []

    def to_dict(self) -> dict[str, Any]:
        """The space as logged to MLflow (JSON-able)."""
        out: dict[str, Any] = {}
        for p in self.parameters:
            if p.choices is not None:
                out[p.name] = list(p.choices)
            else:
                out[p.name] = {"low": p.low, "high": p.high, "log": p.log}
                if p.when:
                    out[p.name]["when"] = dict(p.when)
        return {"space": out, "baselines": [dict(b) for b in self.baselines]}
