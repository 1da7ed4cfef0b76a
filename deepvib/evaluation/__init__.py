"""Metrics computed on trained models, apart from the models themselves."""

from __future__ import annotations


def final_evaluation(model, split) -> dict:
    """The costlier end-of-run numbers of a model's family on a held-out split ({} if none)."""
    if model.config.family == "vae":
        from deepvib.evaluation.vae_evaluation import final_evaluation as vae_final

        return vae_final(model, split)
    return {}
