"""Analytic design of the AC client/server study (seeds 000/001).

Two TWIST inverters feed one resistive load. The SERVER forms the AC voltage
with a proportional-resonant (PR) voltage loop and sends, every control
period over RS485, its voltage reference and ``k_gain`` times its measured
current; the CLIENT tracks that current with a PR current loop and feeds the
received voltage reference forward, as in OwnTech's public example::

    server: u_s = PR_v(v_ref − v)                 duty = 0.5 + u/(2·Udc)
    client: u_c = v_ref(k−1) + PR_i(k_gain·i_s(k−1) − i_c)

``u`` is the averaged differential output voltage of a full bridge (both
TWIST legs, duty and complement), so the plant is linear in ``u``.

The coupled model, in differential mode, has three states: the server and
client inductor currents (two leg inductors in series each) and the load
voltage across both boards' filter capacitors (each board's two leg
capacitors in series, the two boards in parallel)::

    2L di_s/dt = u_s − v − 2r·i_s
    2L di_c/dt = u_c − v − 2r·i_c
    C_bus dv/dt = i_s + i_c − v/R,    C_bus = 2 · (C_leg / 2)

It is sampled with the PWM as a zero-order hold at Ts, with
``computation_delay_samples`` between sampling and the duty update, and the
RS485 link delaying the client's references by ``link_delay_samples``.
"""

from __future__ import annotations

import math
from typing import Any

import control
import numpy as np
from scipy.linalg import expm

from simbaflow.design import loops, realisations
from simbaflow.core.errors import SpecError
from simbaflow.design.sweepspace import expand_pr_sweep

#: Discretisations of the PR a study can sweep in ``ac.sweep.discretisation``.
PR_DISCRETISATIONS = ("control_library_pr", "tustin_prewarp")

#: Columns of the AC study's candidate table, in order (add, never rename).
COLUMNS = [
    "candidate_id", "discretisation", "firmware_pr",
    "server_kp", "server_kr", "server_phi_prime_rad", "client_kp", "client_kr", "client_phi_prime_rad", "k_gain",
    "stable", "max_pole_magnitude", "settling_time_s",
    "voltage_gain_f0", "voltage_amplitude_error_pct", "voltage_phase_error_deg",
    "client_tracking_error_pct", "current_ratio", "phase_error_deg", "phase_error_abs_deg",
    # The same on the currents' own fundamentals (what a probe shows), not their samples.
    "client_tracking_error_waveform_pct", "current_ratio_waveform", "phase_error_waveform_deg",
    "phase_error_waveform_abs_deg",
    "server_phase_margin_deg", "server_gain_margin_db", "client_phase_margin_deg", "client_gain_margin_db",
    "server_b0", "server_b1", "server_a1", "client_b0", "client_b1", "client_a1",
    "status", "reason",
]


def pr_controller_tf(kp: float, kr: float, ts_s: float, w0_rad_s: float, phi_prime_rad: float,
                     discretisation: str) -> control.TransferFunction:
    """The discrete PR ``C(z)`` of one loop.

    ``control_library_pr`` is control_library's ``Pr`` (its φ′ phase lead
    included); ``tustin_prewarp`` is the ideal PR discretised by Tustin
    prewarped at ω0, which has no φ′ (a nonzero φ′ is refused).
    """
    if discretisation == "control_library_pr":
        return realisations.pr_tf(kp, kr, ts_s, w0_rad_s, phi_prime_rad)
    if discretisation == "tustin_prewarp":
        if phi_prime_rad != 0.0:
            raise ValueError("tustin_prewarp has no phase lead φ′; sweep φ′ = 0 with it")
        return realisations.pr_tf_tustin(kp, kr, ts_s, w0_rad_s)
    raise ValueError(f"unknown PR discretisation {discretisation!r}; expected one of {PR_DISCRETISATIONS}")


def continuous_plant(plant: dict) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Differential-mode plant ``dx/dt = A x + B [u_s, u_c]`` and the rows of what is measured.

    States ``[i_s, i_c, v]``, plus ``v_el`` (the electrolytic's own voltage)
    when ``c_electrolytic_f`` and ``esr_electrolytic_ohm`` are given. Each leg
    has ``l_leg_h`` in series with ``r_leg_ohm + l_dcr_ohm + rds_on_ohm`` (one
    switch of the leg conducts at any time); its low-side capacitance
    ``c_leg_f`` is ceramics plus, optionally, an electrolytic with its ESR. A
    board's two legs are in series (2L, 2r, c/2, 2·ESR) and the two boards in
    parallel on the load, so the bus has ``c_leg_f`` in all.

    Returns
    -------
    a, b : ndarray
    rows : dict
        ``v`` (load voltage), ``i_s``, ``i_c`` (true currents) and
        ``i_s_meas``, ``i_c_meas``: the currents as the ADC reads them,
        ``current_sample_offset_s`` after the middle of the bridge's on-pulse,
        where the ripple adds ``offset·(Udc − v)/(2L)``; its DC part does not
        reach the resonant loops and is left out.
    """
    l_h = 2.0 * plant["l_leg_h"]
    r_ohm = 2.0 * (plant.get("r_leg_ohm", 0.0) + plant.get("l_dcr_ohm", 0.0) + plant.get("rds_on_ohm", 0.0))
    c_total = plant["c_leg_f"]
    c_el = plant.get("c_electrolytic_f", 0.0)
    esr = plant.get("esr_electrolytic_ohm", 0.0)
    split = c_el > 0.0 and esr > 0.0
    c_v = c_total - c_el if split else c_total  # capacitance on the load node itself
    g_load = 1.0 / plant["r_load_ohm"]
    n = 4 if split else 3
    a = np.zeros((n, n))
    a[0, 0] = a[1, 1] = -r_ohm / l_h
    a[0, 2] = a[1, 2] = -1.0 / l_h
    a[2, 0] = a[2, 1] = 1.0 / c_v
    a[2, 2] = -g_load / c_v
    if split:
        a[2, 2] -= 1.0 / (esr * c_v)
        a[2, 3] = 1.0 / (esr * c_v)
        a[3, 2] = 1.0 / (esr * c_el)
        a[3, 3] = -1.0 / (esr * c_el)
    b = np.zeros((n, 2))
    b[0, 0] = b[1, 1] = 1.0 / l_h
    eye = np.eye(n)
    offset = plant.get("current_sample_offset_s", 0.0)
    rows = {"v": eye[2], "i_s": eye[0], "i_c": eye[1],
            "i_s_meas": eye[0] - offset / l_h * eye[2], "i_c_meas": eye[1] - offset / l_h * eye[2]}
    return a, b, rows


def hold_matrices(a: np.ndarray, b: np.ndarray, ts_s: float, late_s: float = 0.0):
    """``(Ad, G0, G1)``: over one period the input is last period's for ``late_s``, then this period's.

    ``x(k+1) = Ad x(k) + G0 u(k) + G1 u(k−1)``, exact (matrix exponential);
    ``late_s = 0`` gives the zero-order hold (``G1 = 0``).
    """
    n, m = b.shape

    def phi_gamma(t_s):
        block = expm(np.block([[a, b], [np.zeros((m, n + m))]]) * t_s)
        return block[:n, :n], block[:n, n:]

    ad, _ = phi_gamma(ts_s)
    phi_rest, gamma_rest = phi_gamma(ts_s - late_s)
    _, gamma_late = phi_gamma(late_s)
    return ad, gamma_rest, phi_rest @ gamma_late


def plant_matrices(plant: dict, ts_s: float) -> tuple[np.ndarray, np.ndarray]:
    """``(Ad, Bd)`` of the plant of :func:`continuous_plant`, zero-order hold at ``ts_s``."""
    a, b, _ = continuous_plant(plant)
    ad, g0, _ = hold_matrices(a, b, ts_s)
    return ad, g0


def _ss(tf: control.TransferFunction) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    s = control.tf2ss(tf)
    return np.asarray(s.A), np.asarray(s.B).ravel(), np.asarray(s.C).ravel(), float(np.asarray(s.D).ravel()[0])


def coupled_system(plant: dict, ts_s: float, server_tf, client_tf, k_gain: float,
                   computation_delay_samples: int = 0, link_delay_samples: int = 1,
                   open_loop: str | None = None, pwm_update_delay_s: float = 0.0) -> control.StateSpace:
    """The whole client/server system as one discrete state-space model.

    Parameters
    ----------
    plant : dict
        See :func:`continuous_plant`.
    server_tf, client_tf : control.TransferFunction
        Discrete PR controllers (voltage, current).
    computation_delay_samples : {0, 1}
        Whole periods between sampling and the duty update.
    pwm_update_delay_s : float
        Further delay, ``0 ≤ τ < Ts``, before the PWM applies a new duty
        (the conversion the task reads, the HRTIM preload): the previous
        command holds for ``τ`` into each period.
    open_loop : {None, "server", "client"}
        Break that loop at the plant input: the model's input is then the
        applied voltage ``w`` and its output the controller's command, so that
        ``L(z) = −command/w`` is the loop gain with the other loop closed.

    Returns
    -------
    control.StateSpace
        Closed loop: input ``v_ref``; outputs ``[v, i_s, i_c, u_s, u_c]`` at
        the sampling instants, the currents as the ADC reads them (see
        :func:`continuous_plant`). With ``open_loop``: input ``w``, output
        the broken loop's command.
    """
    if computation_delay_samples not in (0, 1) or link_delay_samples < 0:
        raise ValueError("computation_delay_samples must be 0 or 1 and link_delay_samples ≥ 0")
    if not 0.0 <= pwm_update_delay_s < ts_s:
        raise ValueError("pwm_update_delay_s must be in [0, ts_s)")
    a_c, b_c, rows = continuous_plant(plant)
    ad, g0, g1 = hold_matrices(a_c, b_c, ts_s, pwm_update_delay_s)
    npl = ad.shape[0]
    av, bv, cv, dv = _ss(server_tf)
    ai, bi, ci, di = _ss(client_tf)
    nv, ni, nl = av.shape[0], ai.shape[0], link_delay_samples
    # Commands still to reach the plant: cmd(k-1) ... cmd(k-nh).
    nh = computation_delay_samples + (1 if pwm_update_delay_s > 0 else 0)
    # State: plant | server PR | client PR | link FIFO of (k·i_s, v_ref) | command FIFO of (u_s, u_c).
    n = npl + nv + ni + 2 * nl + 2 * nh
    ip, iv, ii, il, ih = 0, npl, npl + nv, npl + nv + ni, npl + nv + ni + 2 * nl
    eye = np.eye(n)
    a = np.zeros((n, n))
    b = np.zeros(n)

    def on_plant(row):
        full = np.zeros(n)
        full[ip:ip + npl] = row
        return full

    v_meas, is_meas, ic_meas = on_plant(rows["v"]), on_plant(rows["i_s_meas"]), on_plant(rows["i_c_meas"])
    broken = {"server": 0, "client": 1}.get(open_loop) if open_loop else None
    if open_loop and broken is None:
        raise ValueError(f"open_loop must be 'server' or 'client', not {open_loop!r}")
    # Every signal is a linear map: (row over the state, coefficient of the input). The input is
    # v_ref, or with a broken loop the command w fed into its delay line in place of the controller's.
    vin = 0.0 if open_loop else 1.0
    e_v = (-v_meas, vin)  # v_ref − v
    # The client's references: the oldest FIFO entry, or this sample's values without a link delay.
    if nl:
        iref = (eye[il + 2 * (nl - 1)], 0.0)
        vff = (eye[il + 2 * (nl - 1) + 1], 0.0)
    else:
        iref = (k_gain * is_meas, 0.0)
        vff = (np.zeros(n), vin)
    e_i = (iref[0] - ic_meas, iref[1])
    # Controller states and commands.
    xv = eye[iv:iv + nv]
    xi = eye[ii:ii + ni]
    u_s_cmd = (cv @ xv + dv * e_v[0], dv * e_v[1])
    u_c_cmd = (ci @ xi + di * e_i[0] + vff[0], di * e_i[1] + vff[1])
    for k in range(nv):
        a[iv + k] += av[k] @ xv + bv[k] * e_v[0]
        b[iv + k] += bv[k] * e_v[1]
    for k in range(ni):
        a[ii + k] += ai[k] @ xi + bi[k] * e_i[0]
        b[ii + k] += bi[k] * e_i[1]
    for k in range(nl):
        if k == 0:
            a[il] = k_gain * is_meas
            b[il + 1] = vin
        else:
            a[il + 2 * k] = eye[il + 2 * (k - 1)]
            a[il + 2 * k + 1] = eye[il + 2 * (k - 1) + 1]
    # cmd(k-j), j = 0..nh: this sample's commands, then the FIFO, which shifts by one.
    now = [u_s_cmd, u_c_cmd]
    if broken is not None:
        now[broken] = (np.zeros(n), 1.0)
    cmds = [tuple(now)] + [((eye[ih + 2 * (j - 1)], 0.0), (eye[ih + 2 * (j - 1) + 1], 0.0))
                           for j in range(1, nh + 1)]
    for j in range(nh):
        for r in range(2):
            a[ih + 2 * j + r], b[ih + 2 * j + r] = cmds[j][r]
    d0 = computation_delay_samples
    # Over [t_k, t_k + τ) the plant sees cmd(k-d0-1), then cmd(k-d0) until t_k+1.
    applied = [(g0, cmds[d0])] + ([(g1, cmds[d0 + 1])] if pwm_update_delay_s > 0 else [])
    for gamma, cmd in applied:
        for j in range(2):
            a[ip:ip + npl] += np.outer(gamma[:, j], cmd[j][0])
            b[ip:ip + npl] += gamma[:, j] * cmd[j][1]
    a[ip:ip + npl, ip:ip + npl] += ad
    if broken is not None:
        # Output: the broken loop's controller command (v_ref is 0 for the loop gain).
        cmd = (u_s_cmd if broken == 0 else u_c_cmd)[0]
        return control.ss(a, b[:, None], cmd[None, :], np.zeros((1, 1)), ts_s)
    c = np.vstack([v_meas, is_meas, ic_meas, u_s_cmd[0], u_c_cmd[0]])
    d = np.array([[0.0], [0.0], [0.0], [u_s_cmd[1]], [u_c_cmd[1]]])
    return control.ss(a, b[:, None], c, d, ts_s)


def waveform_fundamentals(plant: dict, ts_s: float, w_rad_s: float, u_s: complex, u_c: complex,
                          delay_s: float = 0.0) -> np.ndarray:
    """Fundamentals of the continuous plant signals driven by the bridges' held commands.

    The firmware writes ``u(k)`` once a period and the PWM holds it from
    ``delay_s`` after the sampling instant: the staircase's component at
    ``w_rad_s`` is ``U·e^{−jωD}·(1 − e^{−jωTs})/(jωTs)``, which the plant
    filters. These are the currents' own fundamentals (what a current probe
    shows), whereas :func:`coupled_system` gives them at the sampling
    instants, as the firmware reads them.

    Returns
    -------
    ndarray of complex
        ``[v, i_s, i_c]`` (true currents, no sampling offset).
    """
    a, b, rows = continuous_plant(plant)
    hold = np.exp(-1j * w_rad_s * delay_s) * (1.0 - np.exp(-1j * w_rad_s * ts_s)) / (1j * w_rad_s * ts_s)
    x = np.linalg.solve(1j * w_rad_s * np.eye(a.shape[0]) - a, b @ np.array([u_s, u_c]) * hold)
    return np.array([rows[k] @ x for k in ("v", "i_s", "i_c")])


def frequency_response(sys: control.StateSpace, w_rad_s: float) -> np.ndarray:
    """Complex gains of every output of a discrete SISO-input system at ``w_rad_s``."""
    z = np.exp(1j * w_rad_s * sys.dt)
    a, b, c, d = (np.asarray(m) for m in (sys.A, sys.B, sys.C, sys.D))
    x = np.linalg.solve(z * np.eye(a.shape[0]) - a, b)
    return (c @ x + d).ravel()


def _loop_margins(plant: dict, ts_s: float, server_tf, client_tf, k_gain: float, which: str, **delays) -> dict:
    broken = coupled_system(plant, ts_s, server_tf, client_tf, k_gain, open_loop=which, **delays)
    loop = -control.ss2tf(broken)
    return loops.margins(loop)


def settling_time_from_poles(poles: np.ndarray, ts_s: float, band: float = 0.02) -> float:
    """Time for the slowest mode's envelope to fall to ``band`` (2 %): ``ln(1/band)·Ts / −ln|p|max``."""
    rho = float(np.max(np.abs(poles)))
    if rho >= 1.0:
        return math.inf
    if rho == 0.0:
        return ts_s
    return math.log(1.0 / band) * ts_s / -math.log(rho)


def evaluate_ac_candidate(spec: dict, cand: dict[str, Any]) -> dict[str, Any]:
    """Analytic checks of one candidate: stability, gain and phase at f0, margins.

    Returns
    -------
    dict
        One row with every :data:`COLUMNS` key. ``phase_error_deg`` is the
        phase of the client current relative to the server current at f0
        (negative: the client lags); ``voltage_*`` compare the load voltage
        with the server's reference; ``client_tracking_error_pct`` compares the
        client current with ``k_gain`` times the server current. These use the
        currents as sampled (what the firmware regulates and records); the
        ``*_waveform`` columns compare the currents' own fundamentals
        (:func:`waveform_fundamentals`).
    """
    ac = spec["ac"]
    ts_s, w0 = ac["ts_s"], 2.0 * math.pi * ac["f0_hz"]
    delays = {"computation_delay_samples": ac["computation_delay_samples"],
              "link_delay_samples": ac["link_delay_samples"],
              "pwm_update_delay_s": ac.get("pwm_update_delay_s", 0.0)}
    row: dict[str, Any] = dict.fromkeys(COLUMNS, math.nan)
    row.update(cand)
    row["status"], row["reason"] = "ok", ""
    # firmware/lib/pr_controller runs control_library's Pr; the alternative is analysed, not shipped.
    row["firmware_pr"] = cand["discretisation"] == "control_library_pr"
    for role in ("server", "client"):
        if cand["discretisation"] == "control_library_pr":
            c = realisations.pr_coefficients(ts_s, w0, cand[f"{role}_phi_prime_rad"])
            row.update({f"{role}_b0": c["b"][0], f"{role}_b1": c["b"][1], f"{role}_a1": c["a"][1]})
    server_tf = pr_controller_tf(cand["server_kp"], cand["server_kr"], ts_s, w0, cand["server_phi_prime_rad"],
                                 cand["discretisation"])
    client_tf = pr_controller_tf(cand["client_kp"], cand["client_kr"], ts_s, w0, cand["client_phi_prime_rad"],
                                 cand["discretisation"])
    plant = ac["plant"]
    sys = coupled_system(plant, ts_s, server_tf, client_tf, cand["k_gain"], **delays)
    poles = np.linalg.eigvals(np.asarray(sys.A))
    row["max_pole_magnitude"] = float(np.max(np.abs(poles)))
    row["stable"] = bool(row["max_pole_magnitude"] < 1.0 - 1e-12)
    row["settling_time_s"] = settling_time_from_poles(poles, ts_s)
    if not row["stable"]:
        # Margins of a loop broken inside an unstable system would not say how far from stable it is.
        row["reason"] = f"unstable: closed-loop pole of magnitude {row['max_pole_magnitude']:.6g}"
        return row
    for role in ("server", "client"):
        m = _loop_margins(plant, ts_s, server_tf, client_tf, cand["k_gain"], role, **delays)
        row[f"{role}_phase_margin_deg"] = m["phase_margin_deg"]
        row[f"{role}_gain_margin_db"] = m["gain_margin_db"]
    # The resonators' poles sit on the unit circle at f0, so the loop gain there
    # is infinite and the solve is exact: what remains is the link delay.
    h_v, h_is, h_ic, h_us, h_uc = frequency_response(sys, w0)
    row["voltage_gain_f0"] = float(abs(h_v))
    row["voltage_amplitude_error_pct"] = 100.0 * (abs(h_v) - 1.0)
    row["voltage_phase_error_deg"] = math.degrees(np.angle(h_v))
    ratio = h_ic / h_is
    row["current_ratio"] = float(abs(ratio))
    row["client_tracking_error_pct"] = 100.0 * (abs(ratio) / cand["k_gain"] - 1.0)
    row["phase_error_deg"] = math.degrees(np.angle(ratio))
    row["phase_error_abs_deg"] = abs(row["phase_error_deg"])
    # Between samples the bridges hold their commands: the currents' own fundamentals
    # differ from their samples' by a term common to both boards (see the README).
    hold_s = delays["computation_delay_samples"] * ts_s + delays["pwm_update_delay_s"]
    _, w_is, w_ic = waveform_fundamentals(plant, ts_s, w0, h_us, h_uc, hold_s)
    ratio_w = w_ic / w_is
    row["current_ratio_waveform"] = float(abs(ratio_w))
    row["client_tracking_error_waveform_pct"] = 100.0 * (abs(ratio_w) / cand["k_gain"] - 1.0)
    row["phase_error_waveform_deg"] = math.degrees(np.angle(ratio_w))
    row["phase_error_waveform_abs_deg"] = abs(row["phase_error_waveform_deg"])
    return row


def stabilising_series_resistance_ohm(spec: dict, cand: dict[str, Any], high_ohm: float = 2.0) -> float:
    """Further series resistance per leg (on top of the spec's) that puts the largest pole on the unit circle.

    For a candidate the spec's plant leaves unstable: how much more loss the
    board would need for those gains to be stable (0 when already stable,
    ``inf`` when even ``high_ohm`` is not enough). Bisection on
    ``max_pole_magnitude`` of :func:`evaluate_ac_candidate`.
    """
    def rho(extra_ohm: float) -> float:
        plant = dict(spec["ac"]["plant"])
        plant["r_leg_ohm"] = plant.get("r_leg_ohm", 0.0) + extra_ohm
        trial = {**spec, "ac": {**spec["ac"], "plant": plant}}
        return evaluate_ac_candidate(trial, cand)["max_pole_magnitude"]

    if rho(0.0) < 1.0:
        return 0.0
    if rho(high_ohm) >= 1.0:
        return math.inf
    low, high = 0.0, high_ohm
    while high - low > 1e-5:
        mid = 0.5 * (low + high)
        low, high = (mid, high) if rho(mid) >= 1.0 else (low, mid)
    return high


def evaluate_ac_study(spec: dict) -> list[dict[str, Any]]:
    """Every candidate of the spec's ``ac`` sweep, evaluated (one row each, :data:`COLUMNS`)."""
    where = spec.get("_path", "<spec>")
    if "ac" not in spec:
        raise SpecError(f"{where}: ac: is required for an AC client/server study")
    return [evaluate_ac_candidate(spec, cand) for cand in expand_pr_sweep(spec)]
