"""Install deepvib: `pip install .` or `pip install -e '.[test]'`."""

import pathlib

from setuptools import find_packages, setup

HERE = pathlib.Path(__file__).parent

setup(
    name="deepvib",
    version="0.1.0",
    description=(
        "Deep Variational Information Bottleneck (Alemi et al., 2017) in TF2/Keras, "
        "with baselines, Carlini-Wagner L2 robustness experiments and TF Serving export; "
        "beta-VAE, capacity-controlled beta-VAE and JointVAE with latent-space attacks."
    ),
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.10,<3.13",
    packages=find_packages(include=["deepvib", "deepvib.*", "third_party", "third_party.*"]),
    scripts=sorted(str(p.relative_to(HERE)) for p in (HERE / "bin").iterdir() if p.is_file()),
    install_requires=[
        "tensorflow~=2.21.0",
        "tf-keras~=2.21.0",
        "tensorflow-probability~=0.25.0",
        "tensorflow-datasets~=4.9",
        "cleverhans==4.0.0",
        "absl-py>=2.1",
        "numpy>=1.26",
        "matplotlib>=3.8",
        "tensorboard~=2.21.0",  # tf.summary needs it; TF 2.21 no longer installs it
        "mlxtend>=0.23",
        "scipy>=1.10",  # linear_sum_assignment (discrete-code accuracy), attack checks
        "tensorflow-serving-api~=2.21.0",  # bin/export writes TF Serving warmup requests
        "importlib_resources",  # tensorflow-datasets needs it to download, but does not declare it
    ],
    extras_require={
        "test": ["pytest>=8", "ruff>=0.6"],
    },
)
