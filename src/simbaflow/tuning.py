"""Analytic PI tuning by pole placement from damping ξ and natural frequency ωn."""

from __future__ import annotations

from simbaflow.plants import Plant


def pi_gains_pole_placement(plant: Plant, xi: float, wn_rad_s: float) -> tuple[float, float]:
    """PI gains placing the closed-loop poles at s² + 2ξωn s + ωn².

    For the voltage-compensated leg (seed 002) the closed loop is
    ``(1 + Kp/Ki s) / (1 + Kp/Ki s + L/(E Ki) s²)``, hence
    ``Ki = L ωn² / E`` and ``Kp = 2 ξ Ki / ωn``.
    For E/(L s + R) the characteristic polynomial is
    ``L s² + (R + Kp E) s + Ki E``, hence ``Ki = L ωn² / E`` and
    ``Kp = (2 ξ ωn L − R) / E``.

    Parameters
    ----------
    plant : Plant
        The leg.
    xi : float
        Damping factor (> 0).
    wn_rad_s : float
        Natural frequency, rad/s (> 0).

    Returns
    -------
    kp, ki : float
        Proportional gain (1/A) and integral gain (1/(A·s)).
    """
    if xi <= 0 or wn_rad_s <= 0:
        raise ValueError("xi and wn_rad_s must be positive")
    ki = plant.l_h * wn_rad_s**2 / plant.e_v
    if plant.model == "voltage_compensated_inductor":
        kp = 2.0 * xi * ki / wn_rad_s
    elif plant.model == "inductor_with_resistance":
        kp = (2.0 * xi * wn_rad_s * plant.l_h - plant.r_ohm) / plant.e_v
    else:
        raise ValueError(f"unknown plant model {plant.model!r}")
    return kp, ki


def damping_from_gains(plant: Plant, kp: float, ki: float) -> tuple[float, float]:
    """Inverse of :func:`pi_gains_pole_placement`: (ξ, ωn) that (kp, ki) place.

    Returns NaNs when ``ki <= 0`` (no second-order pole pair to speak of).
    """
    if ki <= 0:
        return float("nan"), float("nan")
    wn_rad_s = (ki * plant.e_v / plant.l_h) ** 0.5
    if plant.model == "voltage_compensated_inductor":
        xi = kp * wn_rad_s / (2.0 * ki)
    else:
        xi = (plant.r_ohm + kp * plant.e_v) / (2.0 * wn_rad_s * plant.l_h)
    return xi, wn_rad_s
