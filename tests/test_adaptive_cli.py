"""`bin/adaptive_attack` (the adaptive evaluation of issue 13) on two tiny run directories
(VIB and deterministic, briefly trained on the embedded mnist_5k, written as the trainer
writes them; tests/helpers/classifier_runs.py): the adaptive.json records, the sanity output,
the summary and figures, resuming, and bad input (one line, exit code 2)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from deepvib.experiments.adaptive import ADAPTIVE_JSON, SUMMARY_JSON
from tests.helpers import forked

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOL = os.path.join(ROOT, "bin", "adaptive_attack")
TINY = ["--num_images=6", "--eot_samples=16", "--judge_samples=64", "--classifier_draws=5",
        "--cw_binary_search_steps=2", "--cw_max_iterations=30", "--cw_initial_const=1",
        "--cw_learning_rate=0.1", "--l2_budgets=2", "--linf_budgets=0.2",
        "--pgd_iterations=5", "--spsa_eps=0.2", "--spsa_iterations=3", "--spsa_samples=8",
        "--spsa_eot_samples=4", "--sanity_l2_budget=2", "--large_l2_budget=20",
        "--small_l2_budget=2", "--broken_accuracy=1"]


def run_tool(*args: str) -> subprocess.CompletedProcess:
    return forked.run([sys.executable, TOOL, *args], timeout=600, cwd=ROOT)


@pytest.fixture(scope="module")
def evaluated(tiny_classifier_runs, tmp_path_factory):
    runs = tiny_classifier_runs  # tests/conftest.py: shared with tests/test_attack_cli.py
    out = str(tmp_path_factory.mktemp("adaptive") / "out")
    proc = run_tool(*TINY, f"--model_dirs={runs['vib']},{runs['deterministic']}",
                    f"--output_dir={out}")
    return runs, out, proc


def test_records_summary_and_figures(evaluated) -> None:
    _, out, proc = evaluated
    assert proc.returncode in (0, 1), proc.stderr  # 1: a sanity check failed (tiny models)
    for name, stochastic in (("vib", True), ("deterministic", False)):
        with open(os.path.join(out, name, ADAPTIVE_JSON)) as f:
            record = json.load(f)
        assert record["stochastic"] is stochastic and record["n"] == 6
        attacks = record["attacks"]
        for key in ("clean", "cw_l2", "pgd_l2_2", "pgd_linf_0.2", "spsa_linf_0.2"):
            acc = np.asarray(attacks[key]["per_example"]["classifier_accuracy"])
            assert acc.shape == (6,) and np.all((acc >= 0) & (acc <= 1))
            assert len(attacks[key]["per_example"]["success"]) == 6
        assert [c["name"] for c in record["sanity"]][0].startswith("accuracy reaches 0")
        assert f"{name}: [" in proc.stdout  # the suite's PASS/FAIL lines
    with open(os.path.join(out, SUMMARY_JSON)) as f:
        summary = json.load(f)
    assert [m["model_kind"] for m in summary["models"]] == ["deterministic", "vib"]
    for norm in ("l2", "linf"):
        with open(os.path.join(out, f"accuracy_budget_{norm}.png"), "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_rerun_skips_finished_models(evaluated) -> None:
    runs, out, _ = evaluated
    proc = run_tool(*TINY, f"--model_dirs={runs['deterministic']}", f"--output_dir={out}")
    assert "already holds this evaluation; skipped" in proc.stdout
    # Only a decision parameter differs: the stored outcomes are decided again, not recomputed.
    strict = run_tool(*TINY, "--significance=1", f"--model_dirs={runs['deterministic']}",
                      f"--output_dir={out}")
    assert strict.returncode in (0, 1), strict.stderr
    assert "decided again" in strict.stdout and "skipped" in strict.stdout
    assert "adaptive evaluation (" not in strict.stdout  # nothing recomputed
    with open(os.path.join(out, "deterministic", ADAPTIVE_JSON)) as f:
        record = json.load(f)
    assert record["params"]["significance"] == record["config"]["significance"] == 1
    assert any("sign test" in c["detail"] for c in record["sanity"])
    other = run_tool(*TINY, "--eot_samples=8", f"--model_dirs={runs['deterministic']}",
                     f"--output_dir={out}")
    assert other.returncode == 2 and "other parameters" in other.stderr


def paper_protocol(runs, out_dir: str, targeted: bool) -> str:
    """Tiny untargeted (or targeted) CW through bin/attack's code on both runs."""
    from deepvib.experiments import robustness
    from deepvib.experiments.attack_config import AttackConfig

    config = AttackConfig(attack="cw_l2", num_images=6, max_iterations=20,
                          binary_search_steps=2, learning_rate=0.1, initial_const=1.0,
                          targeted=targeted)
    jobs = robustness.prepare_jobs([runs["vib"], runs["deterministic"]], config, out_dir)
    robustness.run_jobs(jobs, config, log=lambda line: None)
    return out_dir


def test_figure4b_redrawn_beside_the_papers_protocol(evaluated, tmp_path) -> None:
    runs, out, _ = evaluated
    paper = paper_protocol(runs, str(tmp_path / "paper"), targeted=False)
    summary_dir = str(tmp_path / "summary")
    proc = run_tool("--summary_only", f"--output_dir={out}", f"--paper_protocol_dir={paper}",
                    f"--summary_output_dir={summary_dir}")
    assert proc.returncode == 0, proc.stderr
    with open(os.path.join(summary_dir, SUMMARY_JSON)) as f:
        rows = {p["run_name"]: p for p in json.load(f)["paper_protocol"]}
    for name in ("vib", "deterministic"):
        with open(os.path.join(paper, name, "attack.json")) as f:
            attack = json.load(f)["summary"]
        assert rows[name]["accuracy_under_attack"] == attack["accuracy_under_attack"]
    assert rows["vib"]["beta"] > 0 and rows["deterministic"]["beta"] is None
    with open(os.path.join(summary_dir, "figure4b_adaptive.png"), "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    targeted = paper_protocol(runs, str(tmp_path / "targeted"), targeted=True)
    bad = run_tool("--summary_only", f"--output_dir={out}", f"--paper_protocol_dir={targeted}",
                   f"--summary_output_dir={summary_dir}")
    assert bad.returncode == 2 and "targeted attack" in bad.stderr


@pytest.mark.parametrize("args, message", [
    (["--output_dir=x"], "--model_dirs is required"),
    (["--model_dirs=/nonexistent", "--output_dir=x"], "not a bin/train run directory"),
    (["--model_dirs=/nonexistent", "--output_dir=x", "--eot_samples=0"], "eot_samples"),
    (["--model_dirs=/nonexistent", "--output_dir=x", "--l2_budgets=a"], "--l2_budgets"),
    (["--model_dirs=/nonexistent", "--output_dir=x", "--mode=median"], "mode"),
])
def test_bad_input_is_one_line_and_exit_2(args, message) -> None:
    proc = run_tool(*args)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
