"""TF Serving warmup data: `assets.extra/tf_serving_warmup_requests`, a TFRecord file of
serialized `PredictionLog`s whose `predict_log.request` the server replays when it loads the
version, so the first real request does not pay for graph initialisation.
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

from deepvib.export import requests

try:
    from tensorflow_serving.apis import prediction_log_pb2
except ImportError:  # requests.require_serving_api() says what to install
    prediction_log_pb2 = None

ASSETS_EXTRA = "assets.extra"
WARMUP_FILE = os.path.join(ASSETS_EXTRA, "tf_serving_warmup_requests")
BATCH_SIZES = (1, 8)


def warmup_inputs(shape: tuple[int, ...], batch_size: int, seed: int = 0) -> np.ndarray:
    """Fixed pseudo-random float32 inputs in [0, 1] (valid images, and valid codes)."""
    rng = np.random.default_rng(seed + batch_size)
    return rng.uniform(0.0, 1.0, size=(batch_size, *shape)).astype(np.float32)


def warmup_requests(model_name: str, signatures: dict, batch_sizes=BATCH_SIZES) -> list:
    """One request per signature (name -> SignatureDef) and batch size, each input shaped as
    the signature declares it."""
    batch = []
    for name in sorted(signatures):
        inputs = signatures[name].inputs
        shapes = {key: tf.TensorShape(info.tensor_shape).as_list()[1:]
                  for key, info in inputs.items()}
        batch += [
            requests.predict_request(model_name, name, {
                key: warmup_inputs(tuple(shape), size) for key, shape in shapes.items()})
            for size in batch_sizes
        ]
    return batch


def write_warmup(saved_model_dir: str, predict_requests: list) -> str:
    requests.require_serving_api()
    path = os.path.join(saved_model_dir, WARMUP_FILE)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tf.io.TFRecordWriter(path) as writer:
        for request in predict_requests:
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request)
            )
            writer.write(log.SerializeToString())
    return path


def read_warmup(saved_model_dir: str) -> list:
    """The `PredictionLog` records of a version's warmup file."""
    requests.require_serving_api()
    path = os.path.join(saved_model_dir, WARMUP_FILE)
    return [
        prediction_log_pb2.PredictionLog.FromString(record.numpy())
        for record in tf.data.TFRecordDataset(path)
    ]
