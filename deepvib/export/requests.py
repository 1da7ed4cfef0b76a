"""TF Serving `PredictRequest`s: building them, and checking them against a SavedModel's
signatures the way the server does (signature name, the exact set of input keys, dtypes), plus
the shape, which the server leaves to the graph.

Needs `tensorflow-serving-api` (the protos only; no server).
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2

try:
    from tensorflow_serving.apis import predict_pb2
except ImportError:  # checked when a request is built
    predict_pb2 = None

DEFAULT_SIGNATURE = "serving_default"
SERVING_API_MISSING = (
    "TF Serving requests need the tensorflow-serving-api package: "
    "pip install 'tensorflow-serving-api~=2.21.0' (or export with --nowarmup)"
)


def require_serving_api() -> None:
    if predict_pb2 is None:
        raise RuntimeError(SERVING_API_MISSING)


def predict_request(
    model_name: str, signature_name: str, inputs: dict[str, np.ndarray]
) -> predict_pb2.PredictRequest:
    require_serving_api()
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature_name
    for key, value in inputs.items():
        request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
    return request


def signature_defs(saved_model_dir: str) -> dict[str, meta_graph_pb2.SignatureDef]:
    """The serving signatures in saved_model.pb (without TF's internal `__...` entries)."""
    saved_model = saved_model_pb2.SavedModel()
    with open(os.path.join(saved_model_dir, "saved_model.pb"), "rb") as f:
        saved_model.ParseFromString(f.read())
    (meta_graph,) = saved_model.meta_graphs
    return {k: v for k, v in meta_graph.signature_def.items() if not k.startswith("__")}


def validate_request(
    request: predict_pb2.PredictRequest, signatures: dict[str, meta_graph_pb2.SignatureDef]
) -> None:
    """Raises ValueError when `request` does not fit one of `signatures`."""
    name = request.model_spec.signature_name or DEFAULT_SIGNATURE
    if name not in signatures:
        raise ValueError(f"no signature {name!r}; the model has {sorted(signatures)}")
    signature = signatures[name]
    if set(request.inputs) != set(signature.inputs):
        raise ValueError(
            f"signature {name!r} takes inputs {sorted(signature.inputs)}, "
            f"the request has {sorted(request.inputs)}"
        )
    for key, tensor in request.inputs.items():
        _check_tensor(f"{name}.{key}", tensor, signature.inputs[key])
    unknown = set(request.output_filter) - set(signature.outputs)
    if unknown:
        raise ValueError(f"signature {name!r} has no outputs {sorted(unknown)}")


def _check_tensor(what: str, tensor, info: meta_graph_pb2.TensorInfo) -> None:
    if tensor.dtype != info.dtype:
        raise ValueError(
            f"{what}: dtype {tf.dtypes.as_dtype(tensor.dtype).name}, "
            f"expected {tf.dtypes.as_dtype(info.dtype).name}"
        )
    shape = tf.make_ndarray(tensor).shape  # also checks the content fits the declared shape
    expected = tf.TensorShape(info.tensor_shape)
    if not expected.is_compatible_with(shape):
        raise ValueError(f"{what}: shape {list(shape)}, expected {expected}")
