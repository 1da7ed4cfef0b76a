"""The latent-space attack experiment on trained VAE runs (Sootla 2018, Methods and Results).

For every VAE run directory, the same seeded (source, target) test-image pairs
(`latent_pairs.draw_pairs`) are resized 28 -> the model's size (the VAE pipeline's
`deepvib.data.resize_images`), attacked by `deepvib.attacks.latent.latent_attack` through
`model.latent_mean` at every constant c of the grid, and decoded by `model.reconstruct`
(posterior mean and, for a JointVAE, the argmax code). An independent deterministic classifier
run classifies the reconstructions (resized back to 28x28), which gives AS target and AS
ignore-target per c (`latent_scoring`). Written atomically, per run:

    <output_dir>/<run name>/latent_attack.json   parameters, models, pairs, attack result per
                                                 c, predictions, score tables per c
    <output_dir>/<run name>/latent_attack.md     the tables at the operating c (thesis layout)
    <output_dir>/<run name>/images.npz           sources, targets, adversarials (every c),
                                                 reconstructions at the operating c
    <output_dir>/summary.json, summary.md        Tables 4.1-4.3 over all runs, AS against c

Every run and the classifier are checked (family, checkpoint, dataset, existing results)
before the first optimisation. A run whose latent_attack.json holds the same experiment is
skipped, so an interrupted sweep resumes; one with other parameters is an error unless
`overwrite`.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from deepvib.experiments import latent_scoring
from deepvib.experiments.latent_pairs import PairPlan, draw_pairs
from deepvib.experiments.records import jsonable, with_config_defaults
from deepvib.training import atomic

RECORD_FORMAT = "deepvib.latent_attack/1"
RECORD_JSON = "latent_attack.json"
RECORD_MD = "latent_attack.md"
IMAGES_NPZ = "images.npz"
SUMMARY_JSON = "summary.json"
SUMMARY_MD = "summary.md"
# deepvib.attacks.latent's DEFAULT_CONSTANTS and OPERATING_CONSTANT (a test checks they agree),
# repeated so that reading results back needs no TensorFlow.
DEFAULT_CONSTANTS = (0.01, 0.0316, 0.1, 0.316, 1.0, 3.16, 10.0)
OPERATING_CONSTANT = 0.316
EVAL_BATCH = 500
CLASSIFIER_SIZE = 28

Log = Callable[[str], None]


def print_now(line: str) -> None:
    print(line, flush=True)


@dataclasses.dataclass(frozen=True)
class LatentAttackConfig:
    """What defines one experiment (identical for every model attacked in it)."""

    pairs_per_class_pair: int = 2
    repeats: int = 3
    seed: int = 0
    constants: tuple[float, ...] = DEFAULT_CONSTANTS
    operating_constant: float = OPERATING_CONSTANT
    max_iterations: int = 1000
    learning_rate: float = 1e-2
    batch_size: int = 128
    abort_early: bool = True
    # How a JointVAE's discrete code enters mu: "probabilities" (as in the thesis's setting) or
    # "log_probabilities", an adaptive variant whose gradients do not vanish where the softmax
    # saturates. Continuous-only models are unaffected.
    discrete_code: str = "probabilities"
    dataset: str | None = None
    data_dir: str | None = None

    def __post_init__(self):
        from deepvib.attacks.latent import check_constants
        from deepvib.models.vae import check_discrete_code

        check_discrete_code(self.discrete_code)

        object.__setattr__(self, "constants", tuple(float(c) for c in self.constants))
        grid = check_constants(self.constants)
        if not np.any(np.isclose(grid, self.operating_constant, rtol=1e-6, atol=0.0)):
            raise ValueError(f"operating_constant={self.operating_constant} must be one of "
                             f"the constants {list(self.constants)}")
        for name in ("pairs_per_class_pair", "repeats", "max_iterations", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")

    def params(self) -> dict[str, Any]:
        """Everything but where the data comes from (recorded separately)."""
        d = dataclasses.asdict(self)
        d.pop("dataset"), d.pop("data_dir")
        d["constants"] = list(self.constants)
        if self.discrete_code == "probabilities":
            d.pop("discrete_code")  # the default: records from before the option still match
        return d


@dataclasses.dataclass(frozen=True)
class ScoringClassifier:
    """The independent deterministic classifier run that labels reconstructions."""

    model_dir: str
    train_config: Any
    test_error: float | None

    def describe(self) -> dict[str, Any]:
        return {"model_dir": os.path.abspath(self.model_dir),
                "model": self.train_config.model.model,
                "dataset": self.train_config.dataset, "epochs": self.train_config.epochs,
                "test_error": self.test_error, "input_size": CLASSIFIER_SIZE}


@dataclasses.dataclass(frozen=True)
class Job:
    model_dir: str
    run_name: str
    train_config: Any
    output_dir: str
    checkpoint: str  # the attacked checkpoint: a run trained further is attacked again
    epochs_done: int

    @property
    def record_path(self) -> str:
        return os.path.join(self.output_dir, RECORD_JSON)


@dataclasses.dataclass(frozen=True)
class Plan:
    """Everything checked and loaded before the first optimisation."""

    jobs: list[Job]
    classifier: ScoringClassifier
    config: LatentAttackConfig
    dataset: str
    data_dir: str | None
    pairs: PairPlan
    source_images: np.ndarray  # [P, 28, 28, 1] in [0, 1]
    target_images: np.ndarray
    output_dir: str


def run_name(model_dir: str) -> str:
    return os.path.basename(os.path.normpath(model_dir))


def _checkpointed(model_dir: str) -> str:
    """The base name of the run's latest checkpoint (e.g. 'ckpt-40'); none is an error."""
    from deepvib.training import run_dir

    return run_dir.latest_checkpoint_name(model_dir)


def check_vae_run(model_dir: str):
    """The run's TrainConfig; a classifier run or an unfinished run is an error."""
    from deepvib.training import run_dir

    config = run_dir.load_config(model_dir)
    family = getattr(config.model, "family", "classifier")
    if family != "vae":
        raise ValueError(f"{model_dir} is a {family} run ({config.model.model}), not a VAE: "
                         "the latent-space attack needs an encoder (bin/train --model=vae, "
                         "beta_vae, capacity_vae or jointvae)")
    return config, _checkpointed(model_dir), len(run_dir.read_progress(model_dir))


def check_classifier_run(model_dir: str) -> ScoringClassifier:
    """A deterministic classifier run with a checkpoint, and its test error if recorded."""
    from deepvib.training import run_dir

    config = run_dir.load_config(model_dir)
    if getattr(config.model, "family", "classifier") != "classifier" or config.model.stochastic:
        raise ValueError(f"--classifier_dir={model_dir} must be a deterministic classifier run "
                         f"(bin/train --model=deterministic), got {config.model.model}")
    _checkpointed(model_dir)
    metrics_path = os.path.join(model_dir, run_dir.METRICS)
    error = None
    if os.path.exists(metrics_path):
        error = atomic.read_json(metrics_path).get("test_error")
    return ScoringClassifier(model_dir, config, error)


def prepare(
    vae_dirs: Sequence[str], classifier_dir: str, config: LatentAttackConfig, output_dir: str,
    overwrite: bool = False,
) -> Plan:
    """Check every run, the data and existing results; draw the pairs. Raises ValueError,
    FileNotFoundError or RuntimeError (data unavailable) on bad input."""
    if not vae_dirs:
        raise ValueError("--vae_dirs is empty; give one or more VAE run directories")
    names = [run_name(d) for d in vae_dirs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"VAE runs share the base name(s) {duplicates}; their results would "
                         "overwrite each other in --output_dir")
    checked = [check_vae_run(d) for d in vae_dirs]
    configs = [c for c, _, _ in checked]
    classifier = check_classifier_run(classifier_dir)
    dataset, data_dir = resolve_data(config, configs, vae_dirs)
    for d, c in zip(vae_dirs, configs, strict=True):
        if c.model.channels != 1:
            raise ValueError(f"{d}: the attack on MNIST needs a 1-channel VAE, got "
                             f"{c.model.channels} channels")

    from deepvib.data.sources import load_split

    test = load_split(dataset, "test", data_dir)
    pairs = draw_pairs(test.labels, config.pairs_per_class_pair, config.repeats, config.seed,
                       classifier.train_config.model.num_classes)
    images = _unit_float(test.images)
    jobs = [Job(d, run_name(d), c, os.path.join(output_dir, run_name(d)), ckpt, epochs)
            for d, (c, ckpt, epochs) in zip(vae_dirs, checked, strict=True)]
    plan = Plan(jobs, classifier, config, dataset, data_dir, pairs,
                images[pairs.source_index], images[pairs.target_index], output_dir)
    for job in jobs:
        if not overwrite and os.path.exists(job.record_path) and not is_done(job, plan):
            raise ValueError(f"{job.record_path} holds a latent attack with other parameters, "
                             "pairs, model or classifier; choose a new --output_dir or pass "
                             "--overwrite")
    return plan


def resolve_data(config: LatentAttackConfig, configs: Sequence[Any], vae_dirs: Sequence[str]
                 ) -> tuple[str, str | None]:
    """(dataset, data_dir): the flags, else what the runs were trained on (all the same)."""
    if config.dataset is not None:
        return config.dataset, config.data_dir
    datasets = sorted({c.dataset for c in configs})
    if len(datasets) > 1:
        raise ValueError(f"the VAE runs were trained on different datasets {datasets}; pass "
                         "--dataset so that all are attacked on the same test pairs")
    data_dir = config.data_dir or next((c.data_dir for c in configs if c.data_dir), None)
    return datasets[0], data_dir


def _unit_float(images: np.ndarray) -> np.ndarray:
    images = np.asarray(images)
    if images.dtype == np.uint8:
        return images.astype(np.float32) / 255.0
    return images.astype(np.float32)


def record_identity(job: Job, plan: Plan) -> dict[str, Any]:
    """The fields that must match for a saved record to count as this experiment."""
    return jsonable({
        "params": plan.config.params(),
        "model": job.train_config.model.to_dict(),
        "checkpoint": job.checkpoint,
        "classifier": plan.classifier.describe(),
        "data": {"dataset": plan.dataset, "split": "test"},
        "pairs": plan.pairs.to_json_dict(),
    })


def is_done(job: Job, plan: Plan) -> bool:
    if not os.path.exists(job.record_path):
        return False
    saved = atomic.read_json(job.record_path)
    saved["model"] = with_config_defaults(saved.get("model"), job.train_config.model)
    return all(saved.get(k) == v for k, v in record_identity(job, plan).items())


def run(plan: Plan, overwrite: bool = False, log: Log = print_now) -> list[dict[str, Any]]:
    """Attack every job (skipping finished ones), then write the summary; return records."""
    classifier = None
    records = []
    for job in plan.jobs:
        if not overwrite and is_done(job, plan):
            log(f"{job.run_name}: {job.record_path} already holds this attack; skipped")
            records.append(atomic.read_json(job.record_path))
            continue
        if classifier is None:
            from deepvib.training import run_dir

            classifier, _ = run_dir.load_model(plan.classifier.model_dir)
        records.append(attack_job(job, plan, classifier, log))
    write_summary(plan.output_dir, records)
    return records


def attack_job(job: Job, plan: Plan, classifier, log: Log = print_now) -> dict[str, Any]:
    """Attack one VAE run's pairs at every c, score, and write its files."""
    import tf_keras as keras

    from deepvib.attacks.latent import latent_attack
    from deepvib.data import resize_images
    from deepvib.training import run_dir

    started = time.time()
    keras.utils.set_random_seed(plan.config.seed)
    model, _ = run_dir.load_model(job.model_dir)
    size = job.train_config.model.image_size
    sources = resize_images(plan.source_images, size)
    targets = resize_images(plan.target_images, size)
    cfg = plan.config
    rows = len(sources) * len(cfg.constants)
    log(f"{job.run_name}: {len(sources)} pairs x {len(cfg.constants)} constants "
        f"({rows} optimisations of up to {cfg.max_iterations} steps)")
    last = [time.time()]

    def progress(done: int, total: int) -> None:
        if done == total or time.time() - last[0] > 60:
            last[0] = time.time()
            log(f"{job.run_name}: {done}/{total} rows, {time.time() - started:.0f}s")

    encoder_fn = functools.partial(model.latent_mean, discrete_code=cfg.discrete_code)
    result = latent_attack(encoder_fn, sources, targets, constants=cfg.constants,
                           max_iterations=cfg.max_iterations, learning_rate=cfg.learning_rate,
                           batch_size=cfg.batch_size, abort_early=cfg.abort_early,
                           on_progress=progress)
    classify = _classifier_fn(classifier)
    reconstruct = _batched(model.reconstruct)
    predicted = [classify(reconstruct(adv)) for adv in result.adversarial]
    source_recon, target_recon = reconstruct(sources), reconstruct(targets)
    clean = {"source_reconstruction_predicted": classify(source_recon),
             "target_reconstruction_predicted": classify(target_recon)}
    operating = result.index_of(cfg.operating_constant)
    record = build_record(job, plan, result, predicted, clean, time.time() - started)
    write_images(os.path.join(job.output_dir, IMAGES_NPZ), plan.pairs, sources, targets,
                 result.adversarial, reconstruct(result.adversarial[operating]), source_recon,
                 target_recon, result.constants, operating)
    atomic.write_text(os.path.join(job.output_dir, RECORD_MD), record_markdown(record))
    atomic.write_json(job.record_path, record)
    op = record["scores_by_constant"][operating]
    log(f"{job.run_name}: c={cfg.operating_constant}: AS ignore-target "
        f"{op['ignore_target']:.3f}, AS target {op['target']:.3f}, "
        f"{record['seconds']:.0f}s -> {job.record_path}")
    return record


def _batched(fn: Callable) -> Callable[[np.ndarray], np.ndarray]:
    def apply(images: np.ndarray) -> np.ndarray:
        return np.concatenate([np.asarray(fn(images[i:i + EVAL_BATCH]))
                               for i in range(0, len(images), EVAL_BATCH)])

    return apply


def _classifier_fn(classifier) -> Callable[[np.ndarray], np.ndarray]:
    """Reconstructions [N, S, S, 1] -> predicted classes, via a 28x28 resize."""
    from deepvib.data import resize_images

    log_probs = _batched(classifier.predictive_log_probs)

    def classify(images: np.ndarray) -> np.ndarray:
        small = resize_images(np.clip(images, 0.0, 1.0), CLASSIFIER_SIZE)
        return np.argmax(log_probs(small), axis=1).astype(np.int64)

    return classify


def build_record(
    job: Job, plan: Plan, result, predicted: list[np.ndarray], clean: dict[str, np.ndarray],
    seconds: float,
) -> dict[str, Any]:
    pairs = plan.pairs
    tables = [latent_scoring.score(pairs.source_class, pairs.target_class, p, pairs.repeat)
              for p in predicted]
    by_constant = []
    for c, t in zip(result.constants, tables, strict=True):
        row = {"c": float(c)}
        for m in latent_scoring.MEASURES:
            row[m] = t[m].overall_mean
            row[f"{m}_std_over_repeats"] = t[m].overall_std_over_repeats
        by_constant.append(row)
    src_ok = clean["source_reconstruction_predicted"] == pairs.source_class
    tgt_ok = clean["target_reconstruction_predicted"] == pairs.target_class
    model = job.train_config.model
    record = {
        "format": RECORD_FORMAT,
        "run_name": job.run_name,
        "model_dir": os.path.abspath(job.model_dir),
        "model_kind": model.model,
        "trained": {"dataset": job.train_config.dataset, "epochs": job.train_config.epochs,
                    "epochs_done": job.epochs_done, "seed": job.train_config.seed},
        **record_identity(job, plan),
        "data_dir": plan.data_dir,
        "latent": {"continuous_dim": model.continuous_dim,
                   "discrete_dims": list(model.discrete_dims),
                   "attacked_mean": "continuous posterior mean"
                   + (f" + discrete category {plan.config.discrete_code.replace('_', '-')}, "
                      "unweighted" if model.discrete_dims else "")},
        "attack": result.to_json_dict(),
        "predicted": [p.tolist() for p in predicted],
        "clean": {k: v.tolist() for k, v in clean.items()}
        | {"source_reconstruction_accuracy": float(src_ok.mean()),
           "target_reconstruction_accuracy": float(tgt_ok.mean())},
        "scores_by_constant": by_constant,
        "operating_constant": plan.config.operating_constant,
        "tables": [{m: t[m].to_json_dict() for m in latent_scoring.MEASURES} for t in tables],
        "seconds": round(seconds, 1),
    }
    return jsonable(record)


def write_images(
    path: str, pairs: PairPlan, sources: np.ndarray, targets: np.ndarray,
    adversarial: np.ndarray, adversarial_reconstruction: np.ndarray,
    source_reconstruction: np.ndarray, target_reconstruction: np.ndarray,
    constants: np.ndarray, operating: int,
) -> None:
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer, source_index=pairs.source_index, target_index=pairs.target_index,
        sources=sources, targets=targets, adversarial=adversarial.astype(np.float32),
        adversarial_reconstruction=adversarial_reconstruction.astype(np.float32),
        source_reconstruction=source_reconstruction.astype(np.float32),
        target_reconstruction=target_reconstruction.astype(np.float32),
        constants=constants, operating=np.int64(operating))
    atomic.write_bytes(path, buffer.getvalue())


# --- reading records back: tables for one run and for all runs ------------------------------

def tables_at(record: dict[str, Any], constant: float | None = None
              ) -> dict[str, latent_scoring.ScoreTable]:
    """The ScoreTables of a record at `constant` (default: its operating c)."""
    c = record["operating_constant"] if constant is None else constant
    grid = np.asarray(record["attack"]["constants"])
    hits = np.flatnonzero(np.isclose(grid, c, rtol=1e-6, atol=0.0))
    if hits.size == 0:
        raise ValueError(f"{record['run_name']}: c={c} was not attacked ({grid.tolist()})")
    raw = record["tables"][int(hits[0])]
    return {m: latent_scoring.score_table(m, _array(raw[m]["per_repeat"]))
            for m in latent_scoring.MEASURES}


def _array(nested: Any) -> np.ndarray:
    return np.array(nested, dtype=np.float64)  # None -> nan


def display_name(record: dict[str, Any]) -> str:
    code = record["params"].get("discrete_code", "probabilities")
    variant = ", code attacked on log-probabilities" if code == "log_probabilities" else ""
    return f"{record['run_name']} ({record['model_kind']}{variant})"


def record_markdown(record: dict[str, Any]) -> str:
    clean = record["clean"]
    note = (f"Latent-space attack at the operating c = {record['operating_constant']}; "
            f"{len(record['pairs']['source_index'])} pairs "
            f"({record['params']['pairs_per_class_pair']} per (source, target) class pair x "
            f"{record['params']['repeats']} repeats). Reconstructions classified by "
            f"{record['classifier']['model']} (test error "
            f"{_maybe_percent(record['classifier']['test_error'])}). Clean reconstructions "
            f"classified as their own class: sources "
            f"{100 * clean['source_reconstruction_accuracy']:.1f}%, targets "
            f"{100 * clean['target_reconstruction_accuracy']:.1f}%.")
    return latent_scoring.model_markdown(display_name(record), tables_at(record), note)


def _maybe_percent(value: float | None) -> str:
    return "unknown" if value is None else f"{100 * value:.2f}%"


def by_constant_table(records: Sequence[dict[str, Any]]) -> str:
    """AS ignore-target / AS target (overall means) for every model and c."""
    constants = records[0]["attack"]["constants"]
    lines = ["| Model | " + " | ".join(f"c = {c:g}" for c in constants) + " |",
             "|---" * (len(constants) + 1) + "|"]
    for record in records:
        cells = {round(row["c"], 9): row for row in record["scores_by_constant"]}
        out = []
        for c in constants:
            row = cells.get(round(c, 9))
            out.append("–" if row is None else
                       f"{latent_scoring.percent(row['ignore_target'])} / "
                       f"{latent_scoring.percent(row['target'])}")
        lines.append(f"| {display_name(record)} | " + " | ".join(out) + " |")
    return "\n".join(lines)


def clean_conditioned(record: dict[str, Any]) -> list[dict[str, Any]]:
    """Per c: AS ignore-target and AS target (plain means over pairs) restricted to the pairs
    whose clean source and target reconstructions are classified as their own classes, so that
    the pipeline's own errors do not count as attack successes."""
    pairs = record["pairs"]
    s, t = np.asarray(pairs["source_class"]), np.asarray(pairs["target_class"])
    ok = ((np.asarray(record["clean"]["source_reconstruction_predicted"]) == s)
          & (np.asarray(record["clean"]["target_reconstruction_predicted"]) == t))
    rows = []
    for c, predicted in zip(record["attack"]["constants"], record["predicted"], strict=True):
        p = np.asarray(predicted)[ok]
        rows.append({"c": c, "n": int(ok.sum()),
                     "ignore_target": float(np.mean(p != s[ok])) if ok.any() else None,
                     "target": float(np.mean(p == t[ok])) if ok.any() else None})
    return rows


def clean_conditioned_table(records: Sequence[dict[str, Any]]) -> str:
    constants = records[0]["attack"]["constants"]
    lines = ["| Model | pairs kept | " + " | ".join(f"c = {c:g}" for c in constants) + " |",
             "|---" * (len(constants) + 2) + "|"]
    for record in records:
        rows = {round(r["c"], 9): r for r in clean_conditioned(record)}
        n = next(iter(rows.values()))["n"]
        out = [("–" if rows.get(round(c, 9)) is None else
                f"{latent_scoring.percent(rows[round(c, 9)]['ignore_target'])} / "
                f"{latent_scoring.percent(rows[round(c, 9)]['target'])}") for c in constants]
        lines.append(f"| {display_name(record)} | {n} / {len(record['pairs']['source_index'])} | "
                     + " | ".join(out) + " |")
    return "\n".join(lines)


def clean_table(records: Sequence[dict[str, Any]]) -> str:
    lines = ["| Model | epochs | clean source reconstructions correct | clean target "
             "reconstructions correct |", "|---|---|---|---|"]
    for r in records:
        clean = r["clean"]
        lines.append(f"| {display_name(r)} | {r['trained']['epochs_done']} | "
                     f"{latent_scoring.percent(clean['source_reconstruction_accuracy'])} | "
                     f"{latent_scoring.percent(clean['target_reconstruction_accuracy'])} |")
    return "\n".join(lines)


def norms_table(records: Sequence[dict[str, Any]]) -> str:
    """Mean L2 of the perturbation and mean remaining latent-distance ratio per c."""
    constants = records[0]["attack"]["constants"]
    lines = ["| Model | " + " | ".join(f"c = {c:g}" for c in constants) + " |",
             "|---" * (len(constants) + 1) + "|"]
    for record in records:
        cells = {round(row["c"], 9): row for row in record["attack"]["summary"]}
        out = []
        for c in constants:
            row = cells.get(round(c, 9))
            out.append("–" if row is None else
                       f"{row['mean_l2']:.2f} / {row['mean_latent_distance_ratio']:.2f}")
        lines.append(f"| {display_name(record)} | " + " | ".join(out) + " |")
    return "\n".join(lines)


def summary_markdown(records: Sequence[dict[str, Any]]) -> str:
    rows = [(display_name(r), tables_at(r)) for r in records]
    c = records[0]["operating_constant"]
    parts = [
        "# Latent-space attack: summary",
        f"Operating point c = {c}. AS = attack success rate of the reconstructions of the "
        "adversarial images, classified by an independent classifier (Sootla 2018, Tables "
        "4.1-4.3; marginals are AS ignore-target, as in the thesis).",
        "## Means (Table 4.1); ± = std over repeats of the overall mean",
        latent_scoring.means_table(rows),
        "## Source marginals, AS ignore-target (Table 4.2)",
        latent_scoring.marginals_table(rows, "source"),
        "## Target marginals, AS ignore-target (Table 4.3)",
        latent_scoring.marginals_table(rows, "target"),
        "## AS ignore-target / AS target against c",
        by_constant_table(records),
        "## Mean L2 of the perturbation / mean remaining latent distance "
        "(||mu(x_adv) - mu(x_t)|| / ||mu(x) - mu(x_t)||) against c",
        norms_table(records),
        "## The clean pipeline: unattacked reconstructions classified as their own class",
        clean_table(records),
        "## AS ignore-target / AS target over the pairs whose clean source and target "
        "reconstructions are both classified correctly (plain means over pairs)",
        clean_conditioned_table(records),
    ]
    return "\n\n".join(parts) + "\n"


def summary_json(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    out = []
    for r in records:
        tables = tables_at(r)
        out.append({
            "run_name": r["run_name"], "model_kind": r["model_kind"],
            "operating_constant": r["operating_constant"],
            "n_pairs": len(r["pairs"]["source_index"]), "params": r["params"],
            "classifier": r["classifier"], "trained": r["trained"],
            "clean": {k: r["clean"][k] for k in ("source_reconstruction_accuracy",
                                                  "target_reconstruction_accuracy")},
            "scores_by_constant": r["scores_by_constant"],
            "clean_conditioned_by_constant": clean_conditioned(r),
            "attack_summary": r["attack"]["summary"],
            "operating": {m: {k: v for k, v in tables[m].to_json_dict().items()
                              if k != "per_repeat"} for m in latent_scoring.MEASURES},
            "seconds": r["seconds"],
        })
    return jsonable({"format": "deepvib.latent_attack_summary/1", "runs": out})


def write_summary(output_dir: str, records: Sequence[dict[str, Any]]) -> None:
    if not records:
        return
    atomic.write_json(os.path.join(output_dir, SUMMARY_JSON), summary_json(records))
    atomic.write_text(os.path.join(output_dir, SUMMARY_MD), summary_markdown(records))


def load_records(output_dir: str, names: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """The records under `output_dir` (all, sorted, or the given run names in order)."""
    if not os.path.isdir(output_dir):
        raise FileNotFoundError(f"{output_dir} does not exist or is not a directory")
    if names is None:
        names = sorted(d for d in os.listdir(output_dir)
                       if os.path.isfile(os.path.join(output_dir, d, RECORD_JSON)))
    if not names:
        raise FileNotFoundError(f"{output_dir} holds no <run>/{RECORD_JSON} "
                                "(the --output_dir of bin/latent_attack)")
    records = []
    for name in names:
        path = os.path.join(output_dir, name, RECORD_JSON)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{path} is missing")
        record = atomic.read_json(path)
        if record.get("format") != RECORD_FORMAT:
            raise ValueError(f"{path} is not a {RECORD_FORMAT} record")
        records.append(record)
    return records
