"""What an export is asked to do, checked before TensorFlow is imported (bad input fails fast).

Kept free of TensorFlow imports: `bin/export` validates these first, so a typo costs a
fraction of a second, not TensorFlow's start-up.
"""

from __future__ import annotations

import dataclasses
import os

from deepvib.export import layout


@dataclasses.dataclass(frozen=True)
class ExportOptions:
    model_dir: str
    export_dir: str
    version: int | None = None  # None: one more than the largest existing version
    eval_samples: int | None = None  # None: the run's eval_samples; 0: z = posterior mean
    model_name: str | None = None  # None: the run directory's basename, sanitised
    warmup: bool = True
    jit_compile: bool = False  # XLA; TF Serving then needs --xla_cpu_compilation_enabled=true

    def __post_init__(self):
        if not self.model_dir:
            raise ValueError("--model_dir (a training run directory) is required")
        if not self.export_dir:
            raise ValueError("--export_dir is required")
        if not os.path.exists(self.model_dir):
            raise FileNotFoundError(f"--model_dir={self.model_dir} does not exist")
        if not os.path.isdir(self.model_dir):
            raise ValueError(f"--model_dir={self.model_dir} is not a directory")
        if os.path.exists(self.export_dir) and not os.path.isdir(self.export_dir):
            raise ValueError(f"--export_dir={self.export_dir} exists and is not a directory")
        if self.eval_samples is not None and self.eval_samples < 0:
            raise ValueError(
                f"--eval_samples must be >= 0 (0 = deterministic, z = posterior mean), "
                f"got {self.eval_samples}"
            )
        if self.version is not None:
            layout.check_version(self.version)
        if self.model_name is not None:
            layout.check_model_name(self.model_name)

    @property
    def name(self) -> str:
        return self.model_name or layout.default_model_name(self.model_dir)

    @property
    def model_root(self) -> str:
        return os.path.join(self.export_dir, self.name)

    def resolved_version(self) -> int:
        """The version to write, after checking that it is not taken."""
        version = self.version or layout.next_version(self.model_root)
        layout.check_version_free(self.model_root, version)
        return version
