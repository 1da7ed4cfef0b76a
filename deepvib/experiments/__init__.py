"""The robustness experiments of Alemi et al. (2017, section 4.2; Figures 3 and 4).

- `attack_config`: what `bin/attack` runs (attack, images, targets, parameters); no TensorFlow.
- `model_logits`: a trained classifier as the attacks' `logits_fn` (VIB: log of the mean
  softmax over 12 posterior samples, or "mean mode"; baselines: their logits).
- `robustness`: attacks run directories and writes one `attack.json` per model.
- `records`: reads those files back; no TensorFlow.
- `robustness_figures`: Figure 3, Figure 4(a)/(b) and their JSON summary; no TensorFlow.

Submodules are imported explicitly, so that the command-line tools can reject bad input
before TensorFlow loads.
"""
