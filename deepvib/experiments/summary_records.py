"""`attack_summaries.json`, the per-run summary numbers of a robustness experiment (Alemi et
al. 2017, section 4.2), written by `bin/robustness_figures` and read back as summary-only
attack records.

The raw `bin/attack` directories live under the gitignored `runs/`; the committed results keep
only these summaries. Read back, they let Figure 4 and the JSON summaries be redrawn, or a new
run be added, without the directories: runs on disk take precedence, the earlier summaries fill
in the rest (matched by experiment directory base name, then run name). Summary-only records
have no per-example results or images, so Figure 3 cannot use them. Plain Python and NumPy.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from deepvib.experiments.records import AttackRecord, load_records, sort_key

ATTACK_SUMMARIES_JSON = "attack_summaries.json"
SUMMARY_JSON = "robustness_summary.json"
RECORD_SUMMARY_KEYS = (
    "n", "n_perturbed", "n_success", "success_rate", "accuracy_under_attack", "redraws",
    "redrawn_accuracy_under_attack", "redrawn_success_rate", "mean_l0", "mean_l2", "mean_linf",
    "clean_accuracy", "total_iterations")
# Parameters that change how an attack runs, not what it measures: runs that differ only in
# these may share an experiment.
EXECUTION_PARAMS = ("cw_batch_size", "data_dir")


def attack_summaries(experiments: dict[str, list[AttackRecord]]) -> dict[str, Any]:
    """{experiment name: {run: model, beta, summary numbers, seconds, params, logits,
    trained (dataset, epochs, seed: the figures' provenance)}}."""
    return {name: {r.run_name: {**{k: r.summary.get(k) for k in RECORD_SUMMARY_KEYS},
                                "model_kind": r.model_kind, "beta": r.beta,
                                "seconds": r.raw.get("seconds"), "params": r.raw.get("params"),
                                "logits": r.raw.get("logits"), "trained": r.raw.get("trained")}
                   for r in records}
            for name, records in experiments.items()}


def earlier_records(results_dir: str) -> dict[str, list[AttackRecord]]:
    """{experiment directory base name: summary-only records} from an earlier output.

    The model kind and beta come from each entry or, in files written before entries carried
    them, from the robustness_summary.json beside it.
    """
    path = os.path.join(results_dir, ATTACK_SUMMARIES_JSON)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} does not exist (written by bin/robustness_figures)")
    with open(path, encoding="utf-8") as f:
        summaries = json.load(f)
    if not isinstance(summaries, dict) or not all(
            isinstance(runs, dict) and all(isinstance(e, dict) for e in runs.values())
            for runs in summaries.values()):
        raise ValueError(f"{path} is not {{experiment: {{run: summary}}}}")
    models = _earlier_models(results_dir)
    experiments: dict[str, list[AttackRecord]] = {}
    for name, runs in summaries.items():
        records: list[AttackRecord] = []
        for run, entry in runs.items():
            where = f"{path}: {name}/{run}"
            kind, beta = entry.get("model_kind"), entry.get("beta")
            if kind is None:
                kind, beta = models.get(run, {}).get("model"), models.get(run, {}).get("beta")
            if kind is None:
                raise ValueError(f"{where}: the model is recorded neither there nor in "
                                 f"{SUMMARY_JSON}")
            records.append(_summary_record(run, kind, beta, entry, results_dir, where))
        experiments[name] = sorted(records, key=sort_key)
    return experiments


def records_with_earlier(directory: str,
                         earlier: dict[str, list[AttackRecord]]) -> list[AttackRecord]:
    """The directory's records, plus the earlier runs of its name it lacks; those alone if
    the directory is gone or empty. Earlier runs must be the same attack (parameters other
    than EXECUTION_PARAMS equal)."""
    before = earlier.get(experiment_name(directory), [])
    try:
        found = load_records(directory)
    except FileNotFoundError:
        if before:
            return before
        raise
    names = {r.run_name for r in found}
    added = [r for r in before if r.run_name not in names]
    reference = _attack_params(found[0])
    for r in added:
        if _attack_params(r) != reference:
            raise ValueError(
                f"the earlier run {r.run_name} of {experiment_name(directory)} was another "
                f"attack than {found[0].run_name} in {directory}: {_attack_params(r)} vs "
                f"{reference}")
    return sorted(found + added, key=sort_key)


def experiment_name(directory: str) -> str:
    return os.path.basename(os.path.normpath(directory))


def _attack_params(record: AttackRecord) -> dict[str, Any]:
    params = record.raw.get("params") or {}
    return {k: v for k, v in params.items() if k not in EXECUTION_PARAMS}


def _earlier_models(results_dir: str) -> dict[str, dict[str, Any]]:
    path = os.path.join(results_dir, SUMMARY_JSON)
    if not os.path.isfile(path):
        return {}
    with open(path, encoding="utf-8") as f:
        return json.load(f).get("models", {})


def _summary_record(run: str, kind: str, beta: float | None, entry: dict[str, Any],
                    directory: str, where: str) -> AttackRecord:
    params = entry.get("params")
    if not isinstance(params, dict) or "targeted" not in params:
        raise ValueError(f"{where}: no params.targeted (is it a bin/robustness_figures output?)")
    summary = {k: entry.get(k) for k in RECORD_SUMMARY_KEYS}
    empty = np.zeros(0, np.int64)
    raw = {"run_name": run, "model_kind": kind, "beta": beta, "summary": summary,
           **{k: entry.get(k) for k in ("seconds", "params", "logits", "trained")}}
    return AttackRecord(run_name=run, model_kind=kind, beta=beta, summary=summary,
                        labels=empty, targets=empty if params["targeted"] else None,
                        predicted=empty, indices=empty, directory=directory, raw=raw,
                        summary_only=True)
