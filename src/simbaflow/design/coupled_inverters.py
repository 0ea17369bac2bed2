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


def plant_matrices(plant: dict, ts_s: float) -> tuple[np.ndarray, np.ndarray]:
    """``(Ad, Bd)`` of the coupled plant (states ``[i_s, i_c, v]``, inputs ``[u_s, u_c]``), ZOH at ``ts_s``."""
    l_h = 2.0 * plant["l_leg_h"]
    r_ohm = 2.0 * plant.get("r_leg_ohm", 0.0)
    c_bus_f = plant["c_leg_f"]  # two boards × two leg capacitors in series
    r_load = plant["r_load_ohm"]
    a = np.array([[-r_ohm / l_h, 0.0, -1.0 / l_h],
                  [0.0, -r_ohm / l_h, -1.0 / l_h],
                  [1.0 / c_bus_f, 1.0 / c_bus_f, -1.0 / (r_load * c_bus_f)]])
    b = np.array([[1.0 / l_h, 0.0], [0.0, 1.0 / l_h], [0.0, 0.0]])
    sys = control.c2d(control.ss(a, b, np.eye(3), np.zeros((3, 2))), ts_s, method="zoh")
    return np.asarray(sys.A), np.asarray(sys.B)


def _ss(tf: control.TransferFunction) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    s = control.tf2ss(tf)
    return np.asarray(s.A), np.asarray(s.B).ravel(), np.asarray(s.C).ravel(), float(np.asarray(s.D).ravel()[0])


def coupled_system(plant: dict, ts_s: float, server_tf, client_tf, k_gain: float,
                   computation_delay_samples: int = 0, link_delay_samples: int = 1,
                   open_loop: str | None = None) -> control.StateSpace:
    """The whole client/server system as one discrete state-space model.

    Parameters
    ----------
    plant : dict
        ``l_leg_h``, ``c_leg_f``, ``r_load_ohm`` and optionally ``r_leg_ohm``.
    server_tf, client_tf : control.TransferFunction
        Discrete PR controllers (voltage, current).
    open_loop : {None, "server", "client"}
        Break that loop at the plant input: the model's input is then the
        applied voltage ``w`` and its output the controller's command, so that
        ``L(z) = −command/w`` is the loop gain with the other loop closed.

    Returns
    -------
    control.StateSpace
        Closed loop: input ``v_ref``; outputs ``[v, i_s, i_c, u_s, u_c]``.
        With ``open_loop``: input ``w``, output the broken loop's command.
    """
    if computation_delay_samples not in (0, 1) or link_delay_samples < 0:
        raise ValueError("computation_delay_samples must be 0 or 1 and link_delay_samples ≥ 0")
    ad, bd = plant_matrices(plant, ts_s)
    av, bv, cv, dv = _ss(server_tf)
    ai, bi, ci, di = _ss(client_tf)
    nv, ni, nl = av.shape[0], ai.shape[0], link_delay_samples
    nd = 2 * computation_delay_samples
    # State: plant (3) | server PR | client PR | link FIFO of (k·i_s, v_ref) | held commands.
    n = 3 + nv + ni + 2 * nl + nd
    ip, iv, ii, il, ih = 0, 3, 3 + nv, 3 + nv + ni, 3 + nv + ni + 2 * nl
    a = np.zeros((n, n))
    b = np.zeros(n)
    # Every signal is a linear map: (row over the state, coefficient of v_ref).
    e_v = (-np.eye(n)[ip + 2], 1.0)  # v_ref − v
    # The client's references: the oldest FIFO entry, or this sample's values without a link delay.
    if nl:
        iref = (np.eye(n)[il + 2 * (nl - 1)], 0.0)
        vff = (np.eye(n)[il + 2 * (nl - 1) + 1], 0.0)
    else:
        iref = (k_gain * np.eye(n)[ip], 0.0)
        vff = (np.zeros(n), 1.0)
    e_i = (iref[0] - np.eye(n)[ip + 1], iref[1])
    # Controller states and commands.
    xv = np.eye(n)[iv:iv + nv]
    xi = np.eye(n)[ii:ii + ni]
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
            a[il] = k_gain * np.eye(n)[ip]
            b[il + 1] = 1.0
        else:
            a[il + 2 * k] = np.eye(n)[il + 2 * (k - 1)]
            a[il + 2 * k + 1] = np.eye(n)[il + 2 * (k - 1) + 1]
    # Applied voltages: this sample's commands, or last sample's (held states).
    if nd:
        a[ih], b[ih] = u_s_cmd
        a[ih + 1], b[ih + 1] = u_c_cmd
        applied = [(np.eye(n)[ih], 0.0), (np.eye(n)[ih + 1], 0.0)]
    else:
        applied = [u_s_cmd, u_c_cmd]
    w_input = np.zeros(n)
    broken = {"server": 0, "client": 1}.get(open_loop) if open_loop else None
    if open_loop and broken is None:
        raise ValueError(f"open_loop must be 'server' or 'client', not {open_loop!r}")
    for j in range(2):
        if j == broken:
            w_input[ip:ip + 3] += bd[:, j]
            continue
        a[ip:ip + 3] += np.outer(bd[:, j], applied[j][0])
        b[ip:ip + 3] += bd[:, j] * applied[j][1]
    a[ip:ip + 3, ip:ip + 3] += ad
    if broken is not None:
        # The command of the broken loop (its v_ref path is irrelevant to the loop gain).
        cmd = applied[broken][0]
        return control.ss(a, w_input[:, None], cmd[None, :], np.zeros((1, 1)), ts_s)
    c = np.vstack([np.eye(n)[ip + 2], np.eye(n)[ip], np.eye(n)[ip + 1], u_s_cmd[0], u_c_cmd[0]])
    d = np.array([[0.0], [0.0], [0.0], [u_s_cmd[1]], [u_c_cmd[1]]])
    return control.ss(a, b[:, None], c, d, ts_s)


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
        client current with ``k_gain`` times the server current.
    """
    ac = spec["ac"]
    ts_s, w0 = ac["ts_s"], 2.0 * math.pi * ac["f0_hz"]
    delays = {"computation_delay_samples": ac["computation_delay_samples"],
              "link_delay_samples": ac["link_delay_samples"]}
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
    h_v, h_is, h_ic = frequency_response(sys, w0)[:3]
    row["voltage_gain_f0"] = float(abs(h_v))
    row["voltage_amplitude_error_pct"] = 100.0 * (abs(h_v) - 1.0)
    row["voltage_phase_error_deg"] = math.degrees(np.angle(h_v))
    ratio = h_ic / h_is
    row["current_ratio"] = float(abs(ratio))
    row["client_tracking_error_pct"] = 100.0 * (abs(ratio) / cand["k_gain"] - 1.0)
    row["phase_error_deg"] = math.degrees(np.angle(ratio))
    row["phase_error_abs_deg"] = abs(row["phase_error_deg"])
    return row


def evaluate_ac_study(spec: dict) -> list[dict[str, Any]]:
    """Every candidate of the spec's ``ac`` sweep, evaluated (one row each, :data:`COLUMNS`)."""
    if "ac" not in spec:
        raise SpecError(f"{spec.get('_path', '<spec>')}: ac: is required for an AC client/server study")
    return [evaluate_ac_candidate(spec, cand) for cand in expand_pr_sweep(spec)]
