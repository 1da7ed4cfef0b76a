"""Running experiments: a run directory (config, checkpoints, metrics) and the training loop."""
