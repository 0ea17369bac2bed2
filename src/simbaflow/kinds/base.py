"""What a study kind plugs into the stages.

A kind is decided once, from the spec section it owns (:func:`simbaflow.kinds.kind_of`),
and recorded in ``selection.json``. Stages never look at a spec or a candidate to
guess the kind: they are handed the kind's functions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

#: ``measure(parquet, design settings, analytic row) -> metrics`` of one run.
Measure = Callable[[Path, dict, dict], dict]
#: ``prediction(design settings, analytic row) -> analytic_* columns`` of metrics.csv.
Prediction = Callable[[dict, dict], dict]


@dataclass(frozen=True)
class DesignKind:
    """A kind of simulated design (the ``kind`` key of ``simulate.designs.<name>``).

    Attributes
    ----------
    signals
        Keys of the design's settings that must name one of its signals.
    measure, predict
        How a run is measured, and what the analysis predicts for the same figures.
    """

    signals: tuple[str, ...]
    measure: Callable[[dict], Measure]
    predict: Prediction


@dataclass(frozen=True)
class StudyKind:
    """One kind of study: its spec section and what it supplies to each stage.

    Attributes
    ----------
    name
        Recorded as ``kind`` in ``selection.json``.
    section
        The spec section that makes a study of this kind.
    sweeps
        Whether the kind has candidates to sweep through the workflow.
    expand
        ``expand(spec) -> candidates`` (light: no numerical imports).
    evaluate
        ``evaluate(spec, candidate) -> row`` (with what the figures need).
    columns
        ``columns() -> names`` of ``candidates.csv``, in order.
    quick_table
        Columns ``simbaflow design`` prints.
    candidate_fields, filter_fields
        Candidate fields a simulated design's ``set`` / ``where`` may name.
    designs
        The kinds of simulated design it measures.
    figures
        Names of the analytic figures (``figures/<name>.png``) and ``draw_figures``
        that writes them.
    waveforms
        Which waveform page :mod:`simbaflow.review.simulated` draws.
    export
        ``export(source, firmware_dir, target, dry_run) -> PromotionResult``: what
        ``simbaflow promote`` does with the study's selection (or, for a kind with
        no candidates, its spec).
    default_target
        The promotion target when none is given.
    control_period_s
        ``control_period_s(spec)``: the sample period bench records are timed with.
    count
        ``count(spec)``: how many candidates the sweep has, without expanding it.
    text_columns
        Columns of ``candidates.csv`` holding text (no constraint or objective may name them).
    decision_fields
        Candidate fields the review page shows as the chosen gains and coefficients
        (``<field>_fixed`` beside each when the candidate has it).
    plant_of
        ``plant_of(spec) -> dict``: the nominal plant section that ``plant_variations``
        varies (:mod:`simbaflow.design.corners`); None for a kind without corners.
    """

    name: str
    section: str
    sweeps: bool = True
    expand: Callable[[dict], list[dict[str, Any]]] | None = None
    evaluate: Callable[[dict, dict], dict[str, Any]] | None = None
    columns: Callable[[], list[str]] = list
    quick_table: tuple[str, ...] = ()
    candidate_fields: tuple[str, ...] = ()
    filter_fields: tuple[str, ...] = ()
    designs: Mapping[str, DesignKind] = field(default_factory=dict)
    figures: tuple[str, ...] = ()
    draw_figures: Callable[..., None] | None = None
    waveforms: str = ""
    export: Callable[..., Any] | None = None
    default_target: str = "spin"
    control_period_s: Callable[[dict], float] | None = None
    count: Callable[[dict], int] = lambda spec: 0
    text_columns: tuple[str, ...] = ("candidate_id", "status", "reason")
    decision_fields: tuple[str, ...] = ()
    plant_of: Callable[[dict], dict] | None = None

    def corners(self, spec: dict) -> list:
        """The study's plant corners (:func:`simbaflow.design.corners.expand_corners`), nominal first."""
        from simbaflow.design.corners import Corner, expand_corners

        if self.plant_of is None:
            return [Corner("c0", {})]
        return expand_corners(spec, self.plant_of(spec))

    def design_signals(self) -> dict[str, tuple[str, ...]]:
        """For :func:`simbaflow.simulate.plan.simulate_settings`: each design kind's signal keys."""
        return {name: d.signals for name, d in self.designs.items()}

    def simulate_settings(self, spec: dict) -> dict:
        """The spec's ``simulate`` section checked against this kind (empty when it has none)."""
        from simbaflow.simulate.plan import simulate_settings

        return simulate_settings(spec, self.candidate_fields, self.filter_fields, self.design_signals())

    def measures(self, spec: dict) -> dict:
        """``{design kind: (measure, predict)}`` bound to ``spec``."""
        return {name: (d.measure(spec), d.predict) for name, d in self.designs.items()}
