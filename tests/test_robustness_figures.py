"""Figures 3 and 4 of Alemi et al. (2017) and their summary, from hand-built attack records.

The records are written in the format of `bin/attack` (attack.json + adversarial.npz) with
known outcomes and norms, so the colour coding of Figure 3 and the relative norms of
Figure 4(a) can be checked against numbers worked out by hand. No TensorFlow.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from typing import Any

import numpy as np
import pytest
from matplotlib import image as mpimg

from deepvib.experiments import robustness_figures as rf
from deepvib.experiments.records import AttackRecord, load_records
from deepvib.experiments.summary_records import earlier_records

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def write_record(
    experiment_dir: str, run: str, kind: str, beta: float | None, *,
    predicted: list[int], labels: list[int] | None = None, targets: list[int] | None = None,
    l2: list[float] | None = None, indices: list[int] | None = None,
) -> None:
    """An attack.json + adversarial.npz pair as bin/attack writes them."""
    n = len(predicted)
    labels = labels if labels is not None else [0] * n
    indices = indices if indices is not None else list(range(n))
    predicted_a, labels_a = np.asarray(predicted), np.asarray(labels)
    success = (predicted_a == np.asarray(targets)) if targets else (predicted_a != labels_a)
    l2 = l2 if l2 is not None else [1.0] * n
    l0 = [int(10 * v) for v in l2]
    linf = [v / 4 for v in l2]

    def mean(values):
        chosen = [v for v, ok in zip(values, success, strict=True) if ok]
        return float(np.mean(chosen)) if chosen else None

    record = {
        "format": "deepvib.attack/1", "run_name": run, "model_kind": kind, "beta": beta,
        "params": {"attack": "cw_l2", "targeted": targets is not None},
        "summary": {"n": n, "targeted": targets is not None,
                    "success_rate": float(success.mean()),
                    "accuracy_under_attack": float(np.mean(predicted_a == labels_a)),
                    "clean_accuracy": 1.0, "mean_l0": mean(l0), "mean_l2": mean(l2),
                    "mean_linf": mean(linf)},
        "per_example": {"index": indices, "labels": labels, "targets": targets,
                        "predicted": predicted, "success": success.tolist(),
                        "l0": l0, "l2": l2, "linf": linf},
    }
    os.makedirs(os.path.join(experiment_dir, run))
    with open(os.path.join(experiment_dir, run, "attack.json"), "w", encoding="utf-8") as f:
        json.dump(record, f)
    original = np.zeros((n, 28, 28, 1), np.float32)
    original[:, 8:20, 10:18] = 1.0  # a bright block on a black background
    np.savez(os.path.join(experiment_dir, run, "adversarial.npz"),
             indices=np.asarray(indices), original=original, adversarial=original)


def png_size(path: str) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk, after checking the signature."""
    with open(path, "rb") as f:
        head = f.read(24)
    assert head[:8] == PNG_SIGNATURE and head[12:16] == b"IHDR", path
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


@pytest.fixture
def zeros_to_ones(tmp_path) -> str:
    """Figure 3's setting: three zeros pushed to class 1, against five models."""
    d = str(tmp_path / "zeros")
    common = dict(labels=[0, 0, 0], targets=[1, 1, 1])
    write_record(d, "det", "deterministic", None, predicted=[1, 1, 1], l2=[1.0, 2.0, 3.0],
                 **common)
    write_record(d, "drop", "dropout", None, predicted=[1, 1, 0], l2=[2.0, 2.0, 9.0], **common)
    # beta 1e-2: success, failure (still 0) and another wrong label (7).
    write_record(d, "vib_b", "vib", 1e-2, predicted=[1, 0, 7], l2=[6.0, 1.0, 1.0], **common)
    write_record(d, "vib_a1", "vib", 1e-3, predicted=[1, 1, 0], l2=[2.0, 4.0, 9.0], **common)
    write_record(d, "vib_a2", "vib", 1e-3, predicted=[1, 0, 0], l2=[8.0, 9.0, 9.0], **common)
    return d


def test_cell_outcome():
    assert rf.cell_outcome(label=0, predicted=1, target=1) == "success"
    assert rf.cell_outcome(label=0, predicted=0, target=1) == "failure"
    assert rf.cell_outcome(label=0, predicted=7, target=1) == "other"
    assert rf.cell_outcome(label=0, predicted=7, target=None) == "success"
    assert rf.cell_outcome(label=0, predicted=0, target=None) == "failure"


def test_outcome_colours_are_red_green_purple():
    red, green, purple = (rf.OUTCOME_COLOURS[k] for k in ("success", "failure", "other"))
    assert np.argmax(red) == 0 and np.argmax(green) == 1
    assert purple[0] > purple[1] and purple[2] > purple[1]  # red + blue
    background = rf.on_background(np.zeros((28, 28, 1)), green)
    np.testing.assert_allclose(background, np.broadcast_to(green, (28, 28, 3)))
    np.testing.assert_allclose(rf.on_background(np.ones((28, 28, 1)), green), 1.0)


def test_outcomes_of_a_hand_built_record(zeros_to_ones):
    records = {r.run_name: r for r in load_records(zeros_to_ones)}
    assert rf.outcomes(records["vib_b"]) == ["success", "failure", "other"]
    assert rf.outcomes(records["det"]) == ["success"] * 3


def test_records_are_ordered_baselines_then_vib_by_beta(zeros_to_ones):
    records = load_records(zeros_to_ones)
    assert [r.run_name for r in records] == ["det", "drop", "vib_a1", "vib_a2", "vib_b"]
    assert rf.display_names(records) == ["deterministic", "dropout", "VIB β=1e-03 vib_a1",
                                         "VIB β=1e-03 vib_a2", "VIB β=1e-02"]


def test_figure3_shows_the_outcome_colours(zeros_to_ones, tmp_path):
    path = str(tmp_path / "fig3.png")
    rf.figure3(load_records(zeros_to_ones), path)
    width, height = png_size(path)
    assert width > 300 and height > 200
    pixels = mpimg.imread(path)[..., :3]
    for outcome in ("success", "failure", "other"):
        colour = np.asarray(rf.OUTCOME_COLOURS[outcome])
        close = np.all(np.abs(pixels - colour) < 0.03, axis=-1)
        assert close.sum() > 100, f"no {outcome} background in Figure 3"
    rows_path = str(tmp_path / "fig3_rows.png")
    rf.figure3(load_records(zeros_to_ones), rows_path, models_as_rows=True)
    rows_width, rows_height = png_size(rows_path)
    # Paper layout: 3 rows (images) x 6 columns; transposed: 6 rows (original + 5 models).
    assert rows_height > height and rows_width < width


def capture_figures(monkeypatch) -> dict[str, Any]:
    """{file name: matplotlib Figure} of every figure saved from now on (still written)."""
    figures: dict[str, Any] = {}
    real_save = rf._save

    def save(fig, path: str) -> None:
        real_save(fig, path)
        figures[os.path.basename(path)] = fig

    monkeypatch.setattr(rf, "_save", save)
    return figures


def grid_of_panels(fig) -> list[list[Any]]:
    """The image panels of a figure as rows of axes, top to bottom, left to right."""
    axes = [ax for ax in fig.axes if ax.images]
    tops = sorted({round(ax.get_position().y1, 4) for ax in axes}, reverse=True)
    return [sorted((ax for ax in axes if round(ax.get_position().y1, 4) == top),
                   key=lambda ax: ax.get_position().x0) for top in tops]


def background_colour(pixels: np.ndarray, ax) -> np.ndarray:
    """The PNG's colour near the top-left corner of a panel (outside the drawn block)."""
    height, width = pixels.shape[:2]
    box = ax.get_position()  # figure fraction, after imshow fixed the aspect
    x, y = box.x0 + 0.1 * box.width, box.y1 - 0.1 * box.height
    return pixels[int((1 - y) * height), int(x * width)]


@pytest.mark.parametrize("models_as_rows", [False, True], ids=["paper", "transposed"])
def test_figure3_colours_every_cell_by_its_outcome(zeros_to_ones, tmp_path, monkeypatch,
                                                  models_as_rows):
    """Every cell's background in the PNG is its own outcome's colour: the originals on
    black, then deterministic, dropout and VIB by beta, as worked out from the fixture."""
    s, f, o = (np.asarray(rf.OUTCOME_COLOURS[k]) for k in ("success", "failure", "other"))
    black = np.zeros(3)
    columns = [[black] * 3, [s, s, s], [s, s, f], [s, s, f], [s, f, f], [s, f, o]]
    expected = [list(row) for row in zip(*columns, strict=True)]  # rows = images
    if models_as_rows:
        expected = columns
    figures = capture_figures(monkeypatch)
    path = str(tmp_path / "fig3.png")
    rf.figure3(load_records(zeros_to_ones), path, models_as_rows=models_as_rows)
    grid = grid_of_panels(figures["fig3.png"])
    assert [len(row) for row in grid] == [len(row) for row in expected]
    pixels = mpimg.imread(path)[..., :3]
    for i, (panels, colours) in enumerate(zip(grid, expected, strict=True)):
        for j, (ax, colour) in enumerate(zip(panels, colours, strict=True)):
            np.testing.assert_allclose(background_colour(pixels, ax), colour, atol=0.02,
                                       err_msg=f"cell ({i}, {j})")


def test_figure3_needs_the_same_images_for_every_model(tmp_path):
    d = str(tmp_path / "mixed")
    write_record(d, "det", "deterministic", None, predicted=[1, 1], targets=[1, 1])
    write_record(d, "vib", "vib", 1e-3, predicted=[1, 1], targets=[1, 1], indices=[5, 6])
    with pytest.raises(ValueError, match="other test images"):
        rf.figure3(load_records(d), str(tmp_path / "f.png"))


def test_relative_norms_hand_numbers():
    rel = rf.relative_norms({"l0": 100.0, "l2": 3.0, "linf": 0.5},
                            {"l0": 200.0, "l2": 1.5, "linf": 0.25})
    assert rel == pytest.approx({"l0": 0.5, "l2": 2.0, "linf": 2.0})
    rel = rf.relative_norms({"l0": 1.0, "l2": math.nan, "linf": 0.5},
                            {"l0": 0.0, "l2": 1.0, "linf": math.nan})
    assert all(math.isnan(v) for v in rel.values())


def test_summary_relative_norms_from_records(zeros_to_ones):
    summary = rf.experiment_summary(load_records(zeros_to_ones))
    # Deterministic: every attack succeeded, mean L2 (1 + 2 + 3) / 3 = 2, L0 = 20, Linf = 0.5.
    assert summary["base_norms"] == pytest.approx({"l0": 20.0, "l2": 2.0, "linf": 0.5})
    vib_b = summary["models"]["vib_b"]  # only the first image succeeded, with L2 = 6
    assert vib_b["mean_l2"] == 6.0 and vib_b["relative_l2"] == pytest.approx(3.0)
    assert vib_b["relative_l0"] == pytest.approx(3.0)
    assert vib_b["success_rate"] == pytest.approx(1 / 3)
    assert vib_b["accuracy_under_attack"] == pytest.approx(1 / 3)
    vib_a1 = summary["models"]["vib_a1"]  # successes with L2 = 2 and 4
    assert vib_a1["relative_l2"] == pytest.approx(1.5)
    assert summary["models"]["det"]["relative_linf"] == pytest.approx(1.0)


def test_base_norms_average_deterministic_runs_and_ignore_failures(tmp_path):
    d = str(tmp_path / "two_det")
    write_record(d, "det1", "deterministic", None, predicted=[1], targets=[1], l2=[1.0])
    write_record(d, "det2", "deterministic", None, predicted=[1], targets=[1], l2=[3.0])
    write_record(d, "det3", "deterministic", None, predicted=[0], targets=[1], l2=[50.0])
    assert rf.base_norms(load_records(d))["l2"] == pytest.approx(2.0)


def _targeted_and_untargeted(tmp_path) -> tuple[str, str]:
    targeted, untargeted = str(tmp_path / "targeted"), str(tmp_path / "untargeted")
    for d, targets in ((targeted, [3, 4]), (untargeted, None)):
        write_record(d, "det", "deterministic", None, labels=[1, 2], predicted=[3, 4],
                     targets=targets)
        write_record(d, "vib_a", "vib", 1e-3, labels=[1, 2], predicted=[1, 4],
                     targets=targets)
        write_record(d, "vib_b", "vib", 1e-2, labels=[1, 2], predicted=[1, 2],
                     targets=targets)
    return targeted, untargeted


def series(fig) -> dict[str, tuple[list[float], list[float]]]:
    """{label: (x, y)} of the error-bar series and horizontal lines of a one-panel figure."""
    (ax,) = fig.axes
    out = {c.get_label(): (list(c.lines[0].get_xdata()), list(c.lines[0].get_ydata()))
           for c in ax.containers}
    for line in ax.lines:
        if not line.get_label().startswith("_"):
            out.setdefault(line.get_label(), (list(line.get_xdata()), list(line.get_ydata())))
    return out


def test_make_figures_writes_pngs_and_summary(zeros_to_ones, tmp_path, monkeypatch):
    targeted, untargeted = _targeted_and_untargeted(tmp_path)
    figures = capture_figures(monkeypatch)
    out = str(tmp_path / "figures")
    written = rf.make_figures(out, zeros_to_ones_dir=zeros_to_ones, targeted_dir=targeted,
                              untargeted_dir=untargeted)
    assert set(written) == {"figure3", "figure4a", "figure4b", "summary", "attack_summaries"}
    for name in ("figure3", "figure4a", "figure4b"):
        width, height = png_size(written[name])
        assert width >= 400 and height >= 300 and os.path.getsize(written[name]) > 5000
    # Figure 4(a): every norm relative to the deterministic model's (mean L2 2, L0 20,
    # Linf 0.5): beta 1e-3 averages vib_a1 (3 / 2) and vib_a2 (8 / 2), beta 1e-2 is 6 / 2.
    drawn = series(figures[rf.FIGURE4A_PNG])
    for norm in rf.NORM_LABELS.values():
        assert drawn[norm][0] == pytest.approx([1e-3, 1e-2])
        assert drawn[norm][1] == pytest.approx([(1.5 + 4.0) / 2, 3.0])
    assert drawn["deterministic"][1] == pytest.approx([1.0, 1.0])
    # Figure 4(b): VIB accuracies (1 of 2, 2 of 2) per experiment, the deterministic at 0.
    drawn = series(figures[rf.FIGURE4B_PNG])
    for experiment in ("targeted", "untargeted"):
        assert drawn[f"VIB, {experiment}"] == (pytest.approx([1e-3, 1e-2]),
                                               pytest.approx([0.5, 1.0]))
        assert drawn[f"deterministic, {experiment}"][1] == pytest.approx([0.0, 0.0])
    assert len(drawn) == 4  # no redrawn series: these records have no redraws
    with open(written["summary"], encoding="utf-8") as f:
        summary = json.load(f)
    assert summary["skipped_figures"] == {}
    vib_b = summary["models"]["vib_b"]
    assert vib_b["beta"] == 1e-2 and vib_b["model"] == "vib"
    assert vib_b["targeted"]["accuracy_under_attack"] == 1.0
    assert vib_b["untargeted"]["success_rate"] == 0.0
    assert vib_b["zeros_to_ones"]["relative_l2"] == pytest.approx(3.0)
    assert summary["models"]["det"]["untargeted"]["accuracy_under_attack"] == 0.0


def test_make_figures_skips_figure4a_without_a_deterministic_success(tmp_path):
    d = str(tmp_path / "zeros")
    write_record(d, "det", "deterministic", None, predicted=[0], targets=[1])
    write_record(d, "vib", "vib", 1e-3, predicted=[1], targets=[1])
    written = rf.make_figures(str(tmp_path / "out"), zeros_to_ones_dir=d)
    assert "figure3" in written and "figure4a" not in written
    with open(written["summary"], encoding="utf-8") as f:
        skipped = json.load(f)["skipped_figures"]
    assert "deterministic" in skipped["figure4a"]


def test_make_figures_rejects_missing_directories(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        rf.make_figures(str(tmp_path / "out"), targeted_dir=str(tmp_path / "nothing"))
    with pytest.raises(ValueError, match="at least one experiment directory"):
        rf.make_figures(str(tmp_path / "out"))


def test_make_figures_reads_a_bad_summary_dir_before_writing(zeros_to_ones, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(FileNotFoundError, match="does not exist"):
        rf.make_figures(str(out), zeros_to_ones_dir=zeros_to_ones,
                        summary_dirs=[str(tmp_path / "nothing")])
    assert not out.exists() or not any(out.iterdir())


def test_record_label():
    record = AttackRecord("r", "vib", 1e-3, {}, np.zeros(1), None, np.zeros(1), np.zeros(1),
                          ".", {})
    assert record.label == "VIB β=1e-03" and record.is_vib and not record.targeted


def _json(path: str) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def test_earlier_results_redraw_figure4_without_the_directories(zeros_to_ones, tmp_path):
    targeted, untargeted = _targeted_and_untargeted(tmp_path)
    first = rf.make_figures(str(tmp_path / "first"), zeros_to_ones_dir=zeros_to_ones,
                            targeted_dir=targeted, untargeted_dir=untargeted)
    for d in (zeros_to_ones, targeted, untargeted):
        shutil.rmtree(d)
    again = rf.make_figures(str(tmp_path / "again"), zeros_to_ones_dir=zeros_to_ones,
                            targeted_dir=targeted, untargeted_dir=untargeted,
                            earlier_results=str(tmp_path / "first"))
    for name in ("figure3", "figure4a", "figure4b"):  # Figure 3 carried over, the rest redrawn
        with open(first[name], "rb") as a, open(again[name], "rb") as b:
            assert a.read() == b.read(), name
    assert _json(again["attack_summaries"]) == _json(first["attack_summaries"])
    before, after = _json(first["summary"]), _json(again["summary"])
    assert after["models"] == before["models"] and after["base_norms"] == before["base_norms"]
    assert after["carried_over_figures"] == {"figure3": str(tmp_path / "first")}
    assert after["from_earlier_results"]["targeted"] == ["det", "vib_a", "vib_b"]


def test_redrawing_in_place_keeps_figure3_only_while_its_runs_are_unchanged(zeros_to_ones,
                                                                            tmp_path):
    out = str(tmp_path / "out")
    first = rf.make_figures(out, zeros_to_ones_dir=zeros_to_ones)
    with open(first["figure3"], "rb") as f:
        drawn = f.read()
    shutil.rmtree(zeros_to_ones)
    # Every run from the earlier results: the Figure 3 drawn from them is carried over.
    again = rf.make_figures(out, zeros_to_ones_dir=zeros_to_ones, earlier_results=out)
    with open(again["figure3"], "rb") as f:
        assert f.read() == drawn
    summary = _json(again["summary"])
    assert summary["carried_over_figures"] == {"figure3": out}
    assert summary["figures"]["figure3"] == rf.FIGURE3_PNG
    # A new run joins: Figure 3 cannot be redrawn, and the old drawing is removed.
    write_record(zeros_to_ones, "vib_c", "vib", 1e-1, predicted=[1, 1, 0], targets=[1, 1, 1])
    again = rf.make_figures(out, zeros_to_ones_dir=zeros_to_ones, earlier_results=out)
    assert "figure3" not in again and not os.path.exists(first["figure3"])
    assert "vib_c" not in _json(again["summary"])["skipped_figures"]["figure3"]
    assert os.path.exists(again["figure4a"])


def test_earlier_results_fill_in_runs_a_directory_lacks(tmp_path):
    targeted, untargeted = _targeted_and_untargeted(tmp_path)
    rf.make_figures(str(tmp_path / "first"), targeted_dir=targeted, untargeted_dir=untargeted,
                    summary_dirs=[untargeted])
    shutil.rmtree(os.path.join(targeted, "vib_b"))
    shutil.rmtree(os.path.join(targeted, "vib_a"))  # rerun below with another outcome
    write_record(targeted, "vib_a", "vib", 1e-3, labels=[1, 2], predicted=[3, 4],
                 targets=[3, 4])
    written = rf.make_figures(str(tmp_path / "out"), targeted_dir=targeted,
                              summary_dirs=[str(tmp_path / "gone" / "untargeted")],
                              earlier_results=str(tmp_path / "first"))
    summary = _json(written["summary"])
    assert set(summary["models"]) == {"det", "vib_a", "vib_b"}
    assert summary["models"]["vib_a"]["targeted"]["accuracy_under_attack"] == 0.0  # on disk
    assert summary["models"]["vib_b"]["targeted"]["accuracy_under_attack"] == 1.0  # earlier
    assert summary["from_earlier_results"] == {"targeted": ["vib_b"],
                                               "untargeted": ["det", "vib_a", "vib_b"]}
    entries = _json(written["attack_summaries"])
    assert entries["targeted"]["vib_b"]["model_kind"] == "vib"
    assert entries["targeted"]["vib_b"]["beta"] == 1e-2
    assert set(entries["untargeted"]) == {"det", "vib_a", "vib_b"}


def test_figure3_is_skipped_not_broken_when_some_runs_are_summary_only(zeros_to_ones,
                                                                         tmp_path):
    rf.make_figures(str(tmp_path / "first"), zeros_to_ones_dir=zeros_to_ones)
    shutil.rmtree(os.path.join(zeros_to_ones, "vib_b"))
    written = rf.make_figures(str(tmp_path / "out"), zeros_to_ones_dir=zeros_to_ones,
                              earlier_results=str(tmp_path / "first"))
    skipped = _json(written["summary"])["skipped_figures"]
    assert "figure3" not in written and "vib_b" in skipped["figure3"]
    assert "figure4a" in written


def test_earlier_results_must_be_the_same_attack_and_all_used(tmp_path):
    targeted, _ = _targeted_and_untargeted(tmp_path)
    rf.make_figures(str(tmp_path / "first"), targeted_dir=targeted)
    other = str(tmp_path / "other" / "targeted")  # same name, an untargeted attack
    write_record(other, "vib_c", "vib", 1e-1, labels=[1, 2], predicted=[1, 2])
    with pytest.raises(ValueError, match="the earlier run det of targeted was another attack"):
        rf.make_figures(str(tmp_path / "out"), targeted_dir=other,
                        earlier_results=str(tmp_path / "first"))
    with pytest.raises(ValueError, match="no given directory names: targeted"):
        rf.make_figures(str(tmp_path / "out"), untargeted_dir=str(tmp_path / "other" / "u"),
                        earlier_results=str(tmp_path / "first"))
    assert not os.path.exists(tmp_path / "out")


def test_earlier_results_without_model_kinds_use_the_robustness_summary(tmp_path):
    targeted, _ = _targeted_and_untargeted(tmp_path)
    first = rf.make_figures(str(tmp_path / "first"), targeted_dir=targeted)
    summaries = _json(first["attack_summaries"])
    for entry in summaries["targeted"].values():
        del entry["model_kind"], entry["beta"]
    _write_json(first["attack_summaries"], summaries)
    records = earlier_records(str(tmp_path / "first"))["targeted"]
    assert [(r.run_name, r.model_kind, r.beta, r.targeted) for r in records] == [
        ("det", "deterministic", None, True), ("vib_a", "vib", 1e-3, True),
        ("vib_b", "vib", 1e-2, True)]
    assert all(r.summary_only for r in records)
    os.remove(first["summary"])
    with pytest.raises(ValueError, match="targeted/det: the model is recorded neither"):
        earlier_records(str(tmp_path / "first"))
    with pytest.raises(FileNotFoundError, match="attack_summaries.json"):
        earlier_records(str(tmp_path / "nothing"))


def test_earlier_results_need_params_targeted(tmp_path):
    targeted, _ = _targeted_and_untargeted(tmp_path)
    first = rf.make_figures(str(tmp_path / "first"), targeted_dir=targeted)
    summaries = _json(first["attack_summaries"])
    summaries["targeted"]["det"]["params"] = None
    _write_json(first["attack_summaries"], summaries)
    with pytest.raises(ValueError, match="targeted/det: no params.targeted"):
        earlier_records(str(tmp_path / "first"))
    _write_json(first["attack_summaries"], ["not", "a", "mapping"])
    with pytest.raises(ValueError, match="is not"):
        earlier_records(str(tmp_path / "first"))


def _write_json(path: str, obj: Any) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f)
