"""Test settings: quiet TensorFlow, fixed seeds, the repo importable without installing."""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import pytest  # noqa: E402
import tf_keras as keras  # noqa: E402


def pytest_collection_modifyitems(items) -> None:
    """Start tests/helpers/forked.py's server (it imports TensorFlow) while the first tests run,
    when a collected module runs tools through it."""
    from tests.helpers import forked

    if any(getattr(item.module, "forked", None) is forked for item in items
           if getattr(item, "module", None) is not None):
        forked.prestart()


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(1234)
    yield


@pytest.fixture(scope="session")
def tiny_classifier_runs(tmp_path_factory) -> dict[str, str]:
    """The tiny VIB and deterministic run directories that tests/test_attack_cli.py and
    tests/test_adaptive_cli.py attack (read only), trained once per session."""
    from deepvib.data.sources import load_split
    from tests.helpers.classifier_runs import make_run_dir

    base = tmp_path_factory.mktemp("tiny_classifier_runs")
    train = load_split("mnist_5k", "train")
    return {m: make_run_dir(str(base / m), m, train) for m in ("vib", "deterministic")}
