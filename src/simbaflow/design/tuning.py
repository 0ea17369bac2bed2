"""Analytic PI tuning by pole placement from damping ξ and natural frequency ωn."""

from __future__ import annotations

from simbaflow.design.plants import Plant


def pi_gains_pole_placement(plant: Plant, xi: float, wn_rad_s: float) -> tuple[float, float]:
    """PI gains placing the closed-loop poles at s² + 2ξωn s + ωn².

    Each plant model owns its closed form (:mod:`simbaflow.design.plants`).

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
    return plant.law.pi_gains(plant, xi, wn_rad_s)


def damping_from_gains(plant: Plant, kp: float, ki: float) -> tuple[float, float]:
    """Inverse of :func:`pi_gains_pole_placement`: (ξ, ωn) that (kp, ki) place.

    Returns NaNs when ``ki <= 0`` (no second-order pole pair to speak of).
    """
    if ki <= 0:
        return float("nan"), float("nan")
    return plant.law.damping(plant, kp, ki)
