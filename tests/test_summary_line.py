"""What bin/train prints last: the held-out number a user selects on. A validation run names
its validation error (or ELBO) and keeps the test split's numbers out of the line."""

from deepvib.training.trainer import summary_line


def test_a_test_run_prints_its_test_error_and_a_validation_run_its_validation_error():
    base = {"model": "vib", "dataset": "mnist", "epochs": 25, "test_error": 0.0149}
    assert summary_line(base, "m.json").startswith("test error: 1.49% (vib, mnist, 25 epochs)")
    line = summary_line({**base, "validation_error": 0.0147}, "m.json")
    assert line.startswith("validation error: 1.47% (vib, mnist, 25 epochs) -> m.json")
    assert "1.49" not in line and "do not select on them" in line


def test_a_vae_validation_run_prints_its_validation_elbo():
    base = {"model": "vae", "dataset": "mnist", "epochs": 3, "test_elbo": -150.0}
    assert summary_line(base, "m.json").startswith("test ELBO: -150.00 nats/image")
    line = summary_line({**base, "validation_elbo": -151.25}, "m.json")
    assert line.startswith("validation ELBO: -151.25 nats/image") and "-150.00" not in line
