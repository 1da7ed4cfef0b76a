"""A run directory is locked while it trains: a second trainer pointed at it stops before
writing anything, and the lock goes with the block (or the process) that held it."""

import os
import subprocess
import sys

import pytest

from deepvib.models import ModelConfig
from deepvib.training import run_dir
from deepvib.training.config import TrainConfig
from deepvib.training.trainer import train

HOLD = """
import sys, time
from deepvib.training import run_dir
with run_dir.exclusive(sys.argv[1]):
    print("held", flush=True)
    time.sleep(60)
"""


def tiny(path) -> TrainConfig:
    return TrainConfig(model=ModelConfig(model="deterministic", hidden_units=(8,),
                                         bottleneck_dim=4),
                       output_dir=str(path), dataset="mnist_5k", epochs=1, batch_size=500,
                       jit_compile=False, seed=0)


def test_a_second_trainer_stops_before_writing_and_the_lock_is_released(tmp_path):
    path = tmp_path / "run"
    with run_dir.exclusive(str(path)):
        with pytest.raises(run_dir.RunDirError, match="being trained by another process"):
            train(tiny(path), log=lambda _: None)
        assert os.listdir(path) == []  # no config, checkpoint or progress written
    metrics = train(tiny(path), log=lambda _: None)  # released: the run trains
    assert metrics["epochs"] == 1 and (path / run_dir.METRICS).is_file()


def test_the_lock_of_another_process_holds_until_it_dies(tmp_path):
    path = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(__file__))}
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE,
                              text=True, env=env)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(run_dir.RunDirError, match="another process"):
            with run_dir.exclusive(str(path)):
                pass
    finally:
        holder.kill()
        holder.wait()
    with run_dir.exclusive(str(path)):  # the kernel dropped the dead process's lock
        pass


def test_a_file_in_place_of_the_directory_is_refused(tmp_path):
    path = tmp_path / "run"
    path.write_text("not a directory")
    with pytest.raises(run_dir.RunDirError, match="is a file"):
        with run_dir.exclusive(str(path)):
            pass
