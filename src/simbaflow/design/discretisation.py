"""Discretisation of a PI controller into the firmware recurrence.

Every method yields the seed's recurrence (seed 002)::

    α(k) = α(k−1) + a1·ε(k) + a0·ε(k−1)

i.e. ``C(z) = (a1 + a0 z⁻¹) / (1 − z⁻¹)``.
"""

from __future__ import annotations

import math

import control

#: Methods a study can name in ``sweep.method``.
METHODS = ("tustin", "tustin_prewarp", "forward_euler", "backward_euler", "zoh", "matched")


def pi_recurrence(
    kp: float, ki: float, ts_s: float, method: str, prewarp_rad_s: float | None = None
) -> tuple[float, float]:
    """Coefficients ``(a0, a1)`` of the PI recurrence for ``method``.

    Parameters
    ----------
    kp, ki : float
        Continuous PI gains, ``C(s) = kp + ki/s``.
    ts_s : float
        Sample time, seconds.
    method : str
        One of :data:`METHODS`:

        - ``tustin``: s = 2/Ts·(z−1)/(z+1): a1 = Kp + Ki·Ts/2, a0 = −Kp + Ki·Ts/2;
        - ``tustin_prewarp``: s = ω/tan(ω·Ts/2)·(z−1)/(z+1), exact at ``prewarp_rad_s``;
        - ``forward_euler``: s = (z−1)/Ts: a1 = Kp, a0 = Ki·Ts − Kp;
        - ``backward_euler``: s = (z−1)/(Ts·z): a1 = Kp + Ki·Ts, a0 = −Kp;
        - ``zoh``: step-invariant, which for a PI equals forward Euler;
        - ``matched``: the zero −Ki/Kp maps to e^(−Ki·Ts/Kp), the integrator pole to
          z = 1, and the gain matches the integral action (lim (z−1)/Ts·C(z) at z → 1
          equals Ki). python-control's ``matched`` cannot scale a pole at s = 0 and
          returns NaN for a PI; this is the closed form.
    prewarp_rad_s : float, optional
        Prewarp frequency for ``tustin_prewarp``, rad/s.

    Returns
    -------
    a0, a1 : float
    """
    if ts_s <= 0:
        raise ValueError("ts_s must be positive")
    if method == "tustin":
        half = ki * ts_s / 2.0
        return -kp + half, kp + half
    if method == "tustin_prewarp":
        if not prewarp_rad_s or prewarp_rad_s <= 0:
            raise ValueError("tustin_prewarp needs a positive prewarp_rad_s")
        if prewarp_rad_s * ts_s / 2.0 >= math.pi / 2:
            raise ValueError("prewarp_rad_s must be below the Nyquist frequency π/Ts")
        k = prewarp_rad_s / math.tan(prewarp_rad_s * ts_s / 2.0)
        return -kp + ki / k, kp + ki / k
    if method in ("forward_euler", "zoh"):
        return ki * ts_s - kp, kp
    if method == "backward_euler":
        return -kp, kp + ki * ts_s
    if method == "matched":
        if kp == 0:
            return 0.0, ki * ts_s
        zero = math.exp(-ki * ts_s / kp)
        gain = ki * ts_s / (1.0 - zero)
        return -gain * zero, gain
    raise ValueError(f"unknown method {method!r}; expected one of {METHODS}")


def recurrence_tf(a0: float, a1: float, ts_s: float) -> control.TransferFunction:
    """``C(z) = (a1 z + a0) / (z − 1)`` sampled at ``ts_s``."""
    return control.tf([a1, a0], [1.0, -1.0], ts_s)


def delay_tf(samples: int, ts_s: float) -> control.TransferFunction:
    """``z^-samples``: computation delay between sampling and PWM update."""
    return control.tf([1.0], [1.0] + [0.0] * samples, ts_s)
