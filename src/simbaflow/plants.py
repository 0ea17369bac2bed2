"""Averaged plant models of a converter leg seen by its current controller.

A plant maps the controller output α (a duty-cycle contribution, per unit) to
the inductor current in amperes.
"""

from __future__ import annotations

from dataclasses import dataclass

import control

#: Plant models a study can name in ``plant.model``.
PLANT_MODELS = ("voltage_compensated_inductor", "inductor_with_resistance")


@dataclass(frozen=True)
class Plant:
    """Electrical parameters of one leg.

    Attributes
    ----------
    model : str
        ``voltage_compensated_inductor``: the duty is α + Vs/E, so the output
        voltage cancels and the plant is E/(L s) (the seed study);
        ``inductor_with_resistance``: no compensation, plant E/(L s + R).
    l_h : float
        Inductance, henry.
    r_ohm : float
        Load resistance, ohm.
    e_v : float
        DC bus voltage, volt.
    """

    model: str
    l_h: float
    r_ohm: float
    e_v: float


def plant_tf(plant: Plant) -> control.TransferFunction:
    """Continuous transfer function from α (p.u.) to inductor current (A)."""
    if plant.model == "voltage_compensated_inductor":
        return control.tf([plant.e_v], [plant.l_h, 0.0])
    if plant.model == "inductor_with_resistance":
        return control.tf([plant.e_v], [plant.l_h, plant.r_ohm])
    raise ValueError(f"unknown plant model {plant.model!r}; expected one of {PLANT_MODELS}")


def plant_tf_discrete(plant: Plant, ts_s: float) -> control.TransferFunction:
    """Plant seen by a sampled controller: PWM modelled as a zero-order hold at ``ts_s``."""
    return control.c2d(plant_tf(plant), ts_s, method="zoh")
