"""Controller realisations the firmware actually runs (OwnTech control_library).

The difference equations below were derived from control_library's public
sources (``Pid::calculate``, ``Pr::init``/``Pr::calculate`` and ``Fir::update``).
"""

from __future__ import annotations

import math

import control

#: Realisations of a DC current PI a study can sweep in ``sweep.realisation``.
PI_REALISATIONS = ("pi_recurrence", "control_library_pid")


def control_library_pid_recurrence(kp: float, ki: float, ts_s: float) -> tuple[float, float]:
    """``(a0, a1)`` of OwnTech's ``Pid`` with Td = 0, written as the PI recurrence.

    ``Pid`` integrates ``I(k) = I(k−1) + Ts·ε(k)`` (backward Euler) and outputs
    ``u = Kp·(ε + I/Ti)`` with ``Ti = Kp/Ki``; so
    ``u(k) − u(k−1) = (Kp + Ki·Ts)·ε(k) − Kp·ε(k−1)``. Its anti-windup
    recomputes the integral from the saturated output (back-calculation).
    """
    return -kp, kp + ki * ts_s


def pr_coefficients(ts_s: float, w0_rad_s: float, phi_prime_rad: float = 0.0) -> dict[str, list[float]]:
    """Resonant-part coefficients of control_library's ``Pr``.

    ``r(k) = b0·ε(k) + b1·ε(k−1) − a1·r(k−1) − a2·r(k−2)`` with
    ``b0 = Ts·cos φ'``, ``b1 = −Ts·cos(φ' − ω0·Ts)``, ``a1 = −2·cos(ω0·Ts)``,
    ``a2 = 1``; the output is ``u = Kp·ε + Kr·r``.

    Returns
    -------
    dict
        ``{"b": [b0, b1], "a": [1, a1, a2]}``.
    """
    b0 = ts_s * math.cos(phi_prime_rad)
    b1 = -ts_s * math.cos(phi_prime_rad - w0_rad_s * ts_s)
    return {"b": [b0, b1], "a": [1.0, -2.0 * math.cos(w0_rad_s * ts_s), 1.0]}


def pr_tf(kp: float, kr: float, ts_s: float, w0_rad_s: float, phi_prime_rad: float = 0.0) -> control.TransferFunction:
    """``C(z) = Kp + Kr·(b0 + b1 z⁻¹)/(1 + a1 z⁻¹ + a2 z⁻²)`` as control_library runs it."""
    c = pr_coefficients(ts_s, w0_rad_s, phi_prime_rad)
    resonant = control.tf([c["b"][0], c["b"][1], 0.0], c["a"], ts_s)
    return kp + kr * resonant


def pr_tf_tustin(kp: float, kr: float, ts_s: float, w0_rad_s: float) -> control.TransferFunction:
    """Alternative: the ideal PR ``Kp + Kr·s/(s² + ω0²)`` discretised by Tustin prewarped at ω0."""
    cont = control.tf([kp, kr, kp * w0_rad_s**2], [1.0, 0.0, w0_rad_s**2])
    return control.c2d(cont, ts_s, method="tustin", prewarp_frequency=w0_rad_s)
