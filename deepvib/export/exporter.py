"""Exports a training run as one TF Serving version: `<export_dir>/<name>/<version>/` holding
saved_model.pb, variables/, and assets.extra/ with the warmup requests and
`deepvib_export.json` (model config, predictive samples S, signatures, provenance).
"""

from __future__ import annotations

import dataclasses
import datetime
import os

import tensorflow as tf
import tensorflow_probability as tfp
from absl import logging

import deepvib
from deepvib.export import layout, requests, warmup
from deepvib.export.options import ExportOptions
from deepvib.export.signatures import ServingModule
from deepvib.models import ModelConfig, VAEConfig
from deepvib.training import atomic, run_dir

METADATA_FILE = os.path.join(warmup.ASSETS_EXTRA, "deepvib_export.json")


@dataclasses.dataclass(frozen=True)
class ExportResult:
    path: str
    model_name: str
    version: int
    eval_samples: int
    signatures: tuple[str, ...]


def export_run(model_dir: str, export_dir: str, **options) -> ExportResult:
    """`export(ExportOptions(model_dir, export_dir, ...))`."""
    return export(ExportOptions(model_dir, export_dir, **options))


def export(options: ExportOptions) -> ExportResult:
    """Writes one version; raises ValueError / FileNotFoundError / RuntimeError on bad input."""
    options.resolved_version()  # fail on a taken version before loading anything
    if options.warmup:
        requests.require_serving_api()
    # The checkpoint load_model restores (unless a running training saves one in between).
    checkpoint = tf.train.latest_checkpoint(os.path.join(options.model_dir, run_dir.CHECKPOINTS))
    model, config = run_dir.load_model(options.model_dir)
    samples = predictive_samples(config.model, options.eval_samples)
    module = ServingModule(model, samples, jit_compile=options.jit_compile)
    version = options.resolved_version()
    with layout.staged_version(options.model_root, version) as staging:
        signatures = module.signatures()
        tf.saved_model.save(module, staging, signatures=signatures)
        warmup_count = _write_warmup(staging, options) if options.warmup else 0
        atomic.write_json(
            os.path.join(staging, METADATA_FILE),
            metadata(options, version, config.model, samples, staging, warmup_count)
            | {"checkpoint": checkpoint},
        )
    return ExportResult(
        path=os.path.join(options.model_root, str(version)),
        model_name=options.name,
        version=version,
        eval_samples=samples,
        signatures=tuple(signatures),
    )


def predictive_samples(config: ModelConfig | VAEConfig, requested: int | None) -> int:
    """S of the exported predictive: as requested, else the run's; 0 for deterministic models
    and VAEs (whose signatures are deterministic)."""
    if config.family == "vae" or not config.stochastic:
        if requested:
            logging.warning("--eval_samples=%d ignored: %s models are deterministic",
                            requested, config.model)
        return 0
    return config.eval_samples if requested is None else requested


def _write_warmup(staging: str, options: ExportOptions) -> int:
    """Writes the warmup requests after checking each against the saved signatures."""
    defs = requests.signature_defs(staging)
    batch = warmup.warmup_requests(options.name, defs)
    for request in batch:
        requests.validate_request(request, defs)
    warmup.write_warmup(staging, batch)
    return len(batch)


def metadata(
    options: ExportOptions,
    version: int,
    config: ModelConfig | VAEConfig,
    samples: int,
    staging: str,
    warmup_count: int,
) -> dict:
    if config.family == "vae":
        predictive = "VAE: encode (posterior parameters), decode and reconstruct (Bernoulli means)"
    elif not config.stochastic:
        predictive = "softmax of the deterministic classifier"
    elif samples == 0:
        predictive = "softmax(decoder(posterior mean)): deterministic"
    else:
        predictive = f"mean of softmaxes over {samples} posterior samples (stochastic)"
    return {
        "model_name": options.name,
        "version": version,
        "eval_samples": samples,
        "predictive": predictive,
        "model_config": config.to_dict(),
        "signatures": {
            name: {
                "inputs": _tensor_infos(sig.inputs),
                "outputs": _tensor_infos(sig.outputs),
            }
            for name, sig in requests.signature_defs(staging).items()
        },
        "warmup_requests": warmup_count,
        "jit_compile": options.jit_compile,
        "source_run": os.path.abspath(options.model_dir),
        "averaged_weights": config.ema_decay > 0,
        "exported_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "versions": {
            "deepvib": deepvib.__version__,
            "tensorflow": tf.__version__,
            "tensorflow_probability": tfp.__version__,
        },
    }


def _tensor_infos(infos) -> dict:
    return {
        key: {
            "dtype": tf.dtypes.as_dtype(info.dtype).name,
            "shape": tf.TensorShape(info.tensor_shape).as_list(),
        }
        for key, info in sorted(infos.items())
    }
