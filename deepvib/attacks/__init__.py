"""Adversarial attacks for the robustness experiments of Alemi et al. (2017, section 4.2).

`cw_l2`: Carlini & Wagner (2017) L2 attack; `fgsm` / `pgd`: gradient attacks. All return
`(adversarial_images, AttackResult)`.
"""

from deepvib.attacks.cw_l2 import cw_l2
from deepvib.attacks.gradient import fgsm, pgd
from deepvib.attacks.results import AttackResult, perturbation_norms

__all__ = ["AttackResult", "cw_l2", "fgsm", "perturbation_norms", "pgd"]
