"""`--strategy`: MirroredStrategy on a host CPU split into 2 logical devices, and
MultiWorkerMirroredStrategy with two local worker processes on loopback, against the
single-device run with the same global batch and seed. Each run is a subprocess (logical
devices must be set before TensorFlow starts); see tests/helpers/distributed_run.py.
"""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from tests.helpers import forked

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIMEOUT_S = 240


def launch(strategy, model, output_dir, tf_config=None):
    env = dict(os.environ)
    if tf_config is not None:
        env["TF_CONFIG"] = json.dumps(tf_config)
    return forked.start(
        [sys.executable, "-m", "tests.helpers.distributed_run", strategy, model, str(output_dir)],
        cwd=ROOT, env=env)


def result_of(process):
    try:
        out, err = process.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    assert process.returncode == 0, err[-3000:]
    (line,) = [line for line in out.splitlines() if line.startswith("RESULT ")]
    return json.loads(line[len("RESULT "):])


def run(strategy, model, output_dir):
    return result_of(launch(strategy, model, output_dir))


def losses(result):
    return np.array([step["loss"] for step in result["steps"]])


@pytest.fixture(scope="module")
def single_device(tmp_path_factory):
    root = tmp_path_factory.mktemp("single")
    return {m: run("default", m, root / m) for m in ("deterministic", "vib")}


def test_mirrored_matches_single_device_loss_trajectory(single_device, tmp_path):
    mirrored = run("mirrored", "deterministic", tmp_path / "run")
    assert mirrored["local_devices"] == 2
    reference = single_device["deterministic"]
    assert len(losses(mirrored)) == len(losses(reference)) == 20  # 4,000 / global batch 200
    np.testing.assert_allclose(losses(mirrored), losses(reference), rtol=1e-5)
    for split in ("train", "test"):
        for key in ("loss", "error"):
            np.testing.assert_allclose(mirrored["metrics"][split][key],
                                       reference["metrics"][split][key], rtol=1e-5)
    assert (tmp_path / "run" / "metrics.json").exists()


def test_mirrored_vib_follows_single_device_within_sampling_noise(single_device, tmp_path):
    mirrored = run("mirrored", "vib", tmp_path / "run")
    reference = single_device["vib"]
    # Each replica draws its own posterior noise, so steps agree statistically only.
    np.testing.assert_allclose(losses(mirrored), losses(reference), rtol=0.05)
    kl = [r["metrics"]["test"]["kl_nats"] for r in (mirrored, reference)]
    np.testing.assert_allclose(kl[0], kl[1], rtol=0.05)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_multi_worker_smoke_two_local_workers(single_device, tmp_path):
    workers = [f"127.0.0.1:{free_port()}" for _ in range(2)]
    processes = [
        launch("multi_worker", "deterministic", tmp_path / "run",
               {"cluster": {"worker": workers}, "task": {"type": "worker", "index": i}})
        for i in range(2)
    ]
    results = [result_of(p) for p in processes]
    reference = single_device["deterministic"]["metrics"]
    for result in results:
        for split in ("train", "test"):
            np.testing.assert_allclose(result["metrics"][split]["loss"],
                                       reference[split]["loss"], rtol=1e-5)
    # Only the chief (worker 0) writes the run directory's files.
    progress = (tmp_path / "run" / "progress.jsonl").read_text().splitlines()
    assert len(progress) == 1
    epoch = json.loads(progress[0])
    np.testing.assert_allclose(epoch["train_loss"], losses(single_device["deterministic"])[-1],
                               rtol=1e-5)
    assert (tmp_path / "run" / "metrics.json").exists()
