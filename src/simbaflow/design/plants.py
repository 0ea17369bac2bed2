"""Averaged plant models of a converter leg seen by its current controller.

A plant maps the controller output α (a duty-cycle contribution, per unit) to
the inductor current in amperes. Each model is one class owning its math:
transfer function, pole-placement gains and their inverse, and the output
compensation the duty carries. Adding a model is one class here plus its name
in the spec schema's ``plant.model`` enum.
"""

from __future__ import annotations

from dataclasses import dataclass

import control
import numpy as np


class PlantModel:
    """The law of one plant model; subclasses set :attr:`name` and the methods."""

    #: The spec's ``plant.model`` value.
    name = ""
    #: Whether the duty is α + Vs/E (the firmware adds the measured output voltage).
    compensated = False

    def tf(self, plant: "Plant") -> control.TransferFunction:
        """Continuous transfer function from α (p.u.) to inductor current (A)."""
        raise NotImplementedError

    def pi_gains(self, plant: "Plant", xi: float, wn_rad_s: float) -> tuple[float, float]:
        """``(kp, ki)`` placing the closed-loop poles at s² + 2ξωn s + ωn²."""
        raise NotImplementedError

    def damping(self, plant: "Plant", kp: float, ki: float) -> tuple[float, float]:
        """``(ξ, ωn)`` that ``(kp, ki)`` place (``ki > 0``)."""
        raise NotImplementedError


class VoltageCompensatedInductor(PlantModel):
    """Duty α + Vs/E: the output voltage cancels and the plant is E/(L s) (seed 002).

    The closed loop is ``(1 + Kp/Ki s) / (1 + Kp/Ki s + L/(E Ki) s²)``, hence
    ``Ki = L ωn² / E`` and ``Kp = 2 ξ Ki / ωn``.
    """

    name = "voltage_compensated_inductor"
    compensated = True

    def tf(self, plant):
        return control.tf([plant.e_v], [plant.l_h, 0.0])

    def pi_gains(self, plant, xi, wn_rad_s):
        ki = plant.l_h * wn_rad_s**2 / plant.e_v
        return 2.0 * xi * ki / wn_rad_s, ki

    def damping(self, plant, kp, ki):
        wn_rad_s = (ki * plant.e_v / plant.l_h) ** 0.5
        return kp * wn_rad_s / (2.0 * ki), wn_rad_s


class InductorWithResistance(PlantModel):
    """No compensation: E/(L s + R).

    The characteristic polynomial is ``L s² + (R + Kp E) s + Ki E``, hence
    ``Ki = L ωn² / E`` and ``Kp = (2 ξ ωn L − R) / E``.
    """

    name = "inductor_with_resistance"

    def tf(self, plant):
        return control.tf([plant.e_v], [plant.l_h, plant.r_ohm])

    def pi_gains(self, plant, xi, wn_rad_s):
        ki = plant.l_h * wn_rad_s**2 / plant.e_v
        return (2.0 * xi * wn_rad_s * plant.l_h - plant.r_ohm) / plant.e_v, ki

    def damping(self, plant, kp, ki):
        wn_rad_s = (ki * plant.e_v / plant.l_h) ** 0.5
        return (plant.r_ohm + kp * plant.e_v) / (2.0 * wn_rad_s * plant.l_h), wn_rad_s


#: Plant models a study can name in ``plant.model``.
MODELS: dict[str, PlantModel] = {m.name: m for m in (VoltageCompensatedInductor(), InductorWithResistance())}
PLANT_MODELS = tuple(MODELS)


@dataclass(frozen=True)
class Plant:
    """Electrical parameters of one leg and the model they go through.

    Attributes
    ----------
    model : str
        A key of :data:`MODELS`.
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

    @property
    def law(self) -> PlantModel:
        """The :class:`PlantModel` of :attr:`model`."""
        try:
            return MODELS[self.model]
        except KeyError:
            raise ValueError(f"unknown plant model {self.model!r}; expected one of {PLANT_MODELS}") from None

    def compensation(self, current_a: np.ndarray) -> np.ndarray:
        """``Vs/E`` (float32) the duty adds to α at inductor current ``current_a``; zero without compensation."""
        current_a = np.asarray(current_a, dtype=float)
        if self.law.compensated:
            return (self.r_ohm * current_a / self.e_v).astype(np.float32)
        return np.zeros(current_a.shape, dtype=np.float32)


def plant_from_spec(spec: dict) -> Plant:
    """The spec's ``plant`` section as a :class:`Plant`."""
    p = spec["plant"]
    return Plant(model=p["model"], l_h=float(p["l_h"]), r_ohm=float(p.get("r_ohm", 0.0)), e_v=float(p["e_v"]))


def plant_tf(plant: Plant) -> control.TransferFunction:
    """Continuous transfer function from α (p.u.) to inductor current (A)."""
    return plant.law.tf(plant)


def plant_tf_discrete(plant: Plant, ts_s: float) -> control.TransferFunction:
    """Plant seen by a sampled controller: PWM modelled as a zero-order hold at ``ts_s``."""
    return control.c2d(plant_tf(plant), ts_s, method="zoh")
