"""deepvib: Deep Variational Information Bottleneck (Alemi et al., ICLR 2017) in TF2/Keras.

Data flows one way: `deepvib.data` -> `deepvib.models` (distribution heads, objectives in
`train_step`) -> `deepvib.attacks` -> `deepvib.experiments` -> `deepvib.export`.
"""

__version__ = "0.1.0"
