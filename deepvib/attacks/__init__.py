"""Adversarial attacks for the robustness experiments of Alemi et al. (2017, section 4.2).

`cw_l2`: Carlini & Wagner (2017) L2 attack; `fgsm` / `pgd`: gradient attacks. All return
`(adversarial_images, AttackResult)`. `latent_attack`: the latent-space attack on a VAE encoder
(Kos et al. 2018; Sootla 2018 §2.4). The adaptive evaluation of stochastic models lives in
`deepvib.attacks.eot` and `deepvib.attacks.adaptive`.
"""

from deepvib.attacks.cw_l2 import cw_l2
from deepvib.attacks.gradient import fgsm, pgd
from deepvib.attacks.latent import LatentAttackResult, latent_attack
from deepvib.attacks.results import AttackResult, perturbation_norms

__all__ = ["AttackResult", "LatentAttackResult", "cw_l2", "fgsm", "latent_attack",
           "perturbation_norms", "pgd"]
