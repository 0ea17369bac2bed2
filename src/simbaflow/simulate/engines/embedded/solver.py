"""Event-driven exact solver for switched linear circuits with their control.

Between events the whole system (circuit states, PID integrators, carriers,
sine oscillators, Average integrals and delay chains, held values, and the
constant 1) obeys ``dz/dt = M z`` with ``M`` fixed, so ``z(t0 + h)`` is
``exp(M h) z(t0)``. It is evaluated as a Taylor series in ``h`` summed to
machine precision (the series converges fast because intervals are short
against the circuit's time constants), or, when a blocking switch makes the
interval stiff, with exact propagators ``exp(M 2^p)`` computed once per
discrete state. Nothing is discretised, so a steady state does not drift and
the output grid does not change the result. Everything fixed between events
(forms, ``M``, guards) is cached per discrete state, so a periodic steady
state costs a few dictionary look-ups per event.

An event is either scheduled (carrier vertex, square-wave edge, sample instant,
piecewise-linear corner) or the sign change of a *guard*: the form that keeps a
mode valid (comparator input difference, limiter margin, gate level, diode
current or voltage, zero crossing). Guards are polynomials in the interval's
time, so their roots are located to round-off (far below 1 ns) by a bracketing
root finder. At every event the modes, held outputs, sampled blocks and C Code
blocks are brought to a consistent state before integration resumes.
"""

from __future__ import annotations

import math

import numpy as np

from simbaflow.core.errors import SimbaflowError, SpecError

from . import blocks as B
from .circuit import CHANNEL, DIODE, OFF, element_current, element_voltage, initial_state, net_voltage, solve_topology
from .model import Model, circuit_of

#: Guard values within this fraction of their scale count as zero.
REL_TOL = 1e-11
#: A mode just flipped at a located crossing keeps its new state unless its guard is
#: violated by more than this fraction of its scale (round-off of the crossing, seen
#: through a blocking resistance, must not undo a commutation).
LOCKED_TOL = 1e-6
#: Taylor terms at most (the series is used only while rate x interval <= 4).
MAX_TERMS = 40
#: Points per interval at which guards are checked for a sign change.
GUARD_SAMPLES = 8
#: Consecutive events at one instant before the solver gives up (chattering).
MAX_EVENTS_PER_INSTANT = 200


class DiodeVar:
    """Conduction state of a diode: on needs forward current >= 0, off needs forward voltage <= Vf.

    A body diode is shorted while its MOSFET's gate is on, so it is then held off
    and unguarded.
    """

    def __init__(self, run, element: int, gate: GuardedMode | None):
        self.run, self.element, self.gate = run, element, gate
        self.state = False
        self.name = run.circuit.elements[element].device + " diode"

    def guard(self) -> np.ndarray:
        run = self.run
        e = run.circuit.elements[self.element]
        if self.gate is not None and self.gate.state:
            return run._constant(1.0)
        if self.state:
            return e.diode * run.lift(*element_current(run.circuit, run.topology, self.element, DIODE))
        row, const = element_voltage(run.circuit, run.topology, self.element)
        return run._constant(e.vf) - e.diode * run.lift(row, const)


class GuardedMode:
    """Adapter giving a :class:`~.blocks.ModeVar` the guard interface."""

    def __init__(self, mode: B.ModeVar):
        self.mode = mode
        self.name = mode.name

    @property
    def state(self) -> bool:
        return self.mode.state

    @state.setter
    def state(self, value: bool) -> None:
        self.mode.state = value

    def guard(self) -> np.ndarray:
        form = self.mode.form()
        return form if self.mode.state else -form


_TAUS = np.linspace(0.0, 1.0, GUARD_SAMPLES + 1)
_TAU_POWERS = _TAUS[None, :] ** np.arange(MAX_TERMS + 1)[:, None]


class Evaluation:
    """Everything fixed between events for one discrete state (cached by key)."""

    __slots__ = (
        "forms", "topology", "m", "guards", "guard_abs", "guard_rates", "record", "powers", "rate", "ladder",
        "min_terms",
    )

    def __init__(self, forms, topology, m, guards, record, n_dynamic, min_terms=1):
        self.forms, self.topology, self.m = forms, topology, m
        # Taylor terms an interval needs at least: a block's polynomial chain (Average) is
        # nilpotent, so it is exact with that many terms whatever the interval's rate.
        self.min_terms = min_terms
        self.guards, self.guard_abs, self.record = guards, np.abs(guards), record
        # d(guard)/dt = guards @ m @ z.
        self.guard_rates = guards @ m if m is not None else None
        self.powers = None
        self.ladder: dict[int, np.ndarray] = {}
        # Growth rate of the dynamic part (the constant column only adds a term).
        self.rate = np.abs(m[:n_dynamic, :n_dynamic]).sum(axis=1).max(initial=0.0) if m is not None else 0.0

    def propagator(self, exponent: int) -> np.ndarray:
        """``exp(M 2^exponent)``, computed once per evaluation (stiff intervals)."""
        matrix = self.ladder.get(exponent)
        if matrix is None:
            from scipy.linalg import expm  # only stiff circuits need it

            matrix = self.ladder[exponent] = expm(self.m * math.ldexp(1.0, exponent))
        return matrix

    def taylor(self, n_terms: int) -> np.ndarray:
        """``M^k / k!`` for k = 0..n_terms (extended on demand)."""
        if self.powers is None:
            self.powers = np.eye(self.m.shape[0])[None]
        if len(self.powers) <= n_terms:
            powers = list(self.powers)
            for k in range(len(powers), n_terms + 1):
                powers.append((self.m @ powers[-1]) / k)
            self.powers = np.array(powers)
        return self.powers[: n_terms + 1]


class Run:
    """State of one simulation of a :class:`~.model.Model`."""

    def __init__(self, model: Model, recorders: list):
        self.model = model
        self.recorders = recorders
        self.circuit = circuit_of(model)
        self.nx = len(self.circuit.states)
        offset = self.nx
        for block in model.blocks:
            block.state0 = offset
            offset += block.n_states
        self.one = offset
        self.nz = offset + 1
        self.held = np.zeros(self.nz, dtype=bool)
        for block in model.blocks:
            if block.holds:
                self.held[block.state0 : block.state0 + block.n_states] = True
        self.moving = ~self.held
        self.moving[self.one] = False
        self.z = np.zeros(self.nz)
        self.z[: self.nx] = initial_state(self.circuit)
        self.z[self.one] = 1.0
        self.t = 0.0
        self.forms: list[np.ndarray] = []
        self.topologies: dict[tuple, object] = {}
        self.cache: dict[tuple, Evaluation] = {}
        self.held_nonlinear = False
        # Per switch: (gate mode or None, diode mode or None).
        self.switch_state: list[tuple] = []
        switch_guards: list = []
        for switch in model.switches:
            element = self.circuit.elements[switch.element]
            gate = diode = None
            if element.gated:
                net = switch.gate
                # A gate turns the switch on above 0.5 (logic level of SIMBA's 0/1 signals).
                mode = B.ModeVar(lambda net=net: self.forms[net] - self._constant(0.5), False, f"{switch.device} gate")
                gate = GuardedMode(mode)
                switch_guards.append(gate)
            if element.diode:
                diode = DiodeVar(self, switch.element, gate)
                switch_guards.append(diode)
            self.switch_state.append((gate, diode))
        for block in model.blocks:
            block.reset(self)
        self.guards = switch_guards + [GuardedMode(m) for b in model.blocks for m in b.modes]
        self.zcds = [b for b in model.blocks if isinstance(b, B.ZeroCrossingDetector)]
        self.samplers = [b for b in model.blocks if isinstance(b, (B.Sampled, B.CCode))]
        self.ccodes = [b for b in model.blocks if isinstance(b, B.CCode) and b.ts is None]
        self.timed = [b for b in model.blocks if type(b).breakpoint is not B.Block.breakpoint]
        # Blocks that keep a history of what the solver integrated (Average).
        self.historians = [b for b in model.blocks if type(b).integrated is not B.Block.integrated]
        self.min_terms = max([b.taylor_terms for b in model.blocks], default=1)
        # Next instant at which a block other than a grid-only one (Average) acts.
        self.next_structural = math.inf
        self.keyed = [b for b in model.blocks if type(b).key is not B.Block.key]
        self.snapped = [b for b in model.blocks if type(b).snap is not B.Block.snap]
        self.now: Evaluation | None = None
        self.key: tuple | None = None  # discrete state of ``now``

    # --- forms ---------------------------------------------------------------------
    def _constant(self, value: float) -> np.ndarray:
        form = np.zeros(self.nz)
        form[self.one] = value
        return form

    def lift(self, row_x: np.ndarray, const: float) -> np.ndarray:
        """A circuit quantity ``row_x @ x + const`` as a form on ``z``."""
        form = np.zeros(self.nz)
        form[: self.nx] = row_x
        form[self.one] = const
        return form

    @property
    def topology(self):
        return self.now.topology

    @property
    def m(self):
        return self.now.m

    def conduction(self, k: int) -> int:
        """Conduction code of switch ``k``: the channel when gated on, else the diode when on."""
        gate, diode = self.switch_state[k]
        if gate is not None and gate.state:
            if diode is not None:
                diode.state = False
            return CHANNEL
        return DIODE if diode is not None and diode.state else OFF

    def evaluate(self) -> None:
        """Forms, system matrix and guards of the current discrete state (cached)."""
        codes = tuple(self.conduction(k) for k in range(len(self.switch_state)))
        key = (codes, tuple(g.state for g in self.guards), tuple(b.key(self) for b in self.keyed))
        self.key = key
        cached = self.cache.get(key)
        if cached is not None:
            self.now = cached
            self.forms = cached.forms
            return
        topology = self.topologies.get(codes)
        if topology is None:
            topology = self.topologies[codes] = solve_topology(self.circuit, codes)
        self.now = Evaluation(None, topology, None, np.zeros((0, self.nz)), None, self.one)
        self.forms = [np.zeros(self.nz)] * self.model.n_nets
        for probe in self.model.probes:
            if probe.kind == "voltage":
                row, const = net_voltage(self.circuit, topology, probe.net)
            else:
                row, const = element_current(self.circuit, topology, probe.element)
            self.forms[probe.output] = probe.gain * self.lift(row, const)
        self.held_nonlinear = False
        for block in self.model.blocks:
            block.evaluate(self)
        m = np.zeros((self.nz, self.nz))
        m[: self.nx, : self.nx] = topology.a
        m[: self.nx, self.one] = topology.b
        for block in self.model.blocks:
            block.derivatives(self, m)
        self.now.m = m
        guards = np.array([g.guard() for g in self.guards]).reshape(len(self.guards), self.nz)
        record = np.array([r(self) for r in self.recorders]).reshape(len(self.recorders), self.nz)
        evaluation = Evaluation(self.forms, topology, m, guards, record, self.one, self.min_terms)
        self.now = evaluation
        if not self.held_nonlinear:
            # A held product depends on z, so its evaluation is only valid now.
            self.cache[key] = evaluation

    # --- modes -----------------------------------------------------------------------
    def decide(self, locked: set[int]) -> bool:
        """Flip the first mode whose guard is negative (or zero and falling); True if one flipped.

        One at a time: a flip changes the other guards and the system matrix (a gate
        turning off is what makes a diode conduct, and changes every slope), so they
        are re-evaluated before the next decision.
        """
        now = self.now
        if not self.guards:
            return False
        z = self.z
        values = now.guards @ z
        tolerance = REL_TOL * (now.guard_abs @ np.abs(z))
        slopes = now.guard_rates @ z
        for k in np.flatnonzero((values < -tolerance) | ((values <= tolerance) & (slopes < 0.0))):
            if k in locked and values[k] > -(LOCKED_TOL / REL_TOL) * tolerance[k]:
                continue
            guard = self.guards[k]
            guard.state = not guard.state
            return True
        return False

    def settle(self, locked: set[int] = frozenset()) -> None:
        """Re-evaluate until no mode wants to change."""
        for _ in range(4 * len(self.guards) + 8):
            self.evaluate()
            if not self.decide(locked):
                return
        names = ", ".join(g.name for g in self.guards)
        raise SimbaflowError(
            f"design '{self.model.design_name}': the modes of {names} do not settle at t = {self.t:.12g} s "
            "(the circuit chatters); check the control logic"
        )

    def instant(self, locked: set[int] = frozenset()) -> None:
        """Everything that happens at the current instant: modes, pulses, samples, C calls."""
        for block in self.snapped:
            block.snap(self)
        self.settle(locked)
        pulses = False
        for zcd in self.zcds:
            if zcd.initialised and zcd.mode.state != zcd.last_state:
                zcd.pulse = 1.0 if zcd.mode.state else -1.0
                pulses = True
        if pulses:
            self.evaluate()
        changed = again = False
        for block in self.samplers:
            if changed:
                self.evaluate()
            changed = block.sample(self)
            again = again or changed
        if pulses:
            for zcd in self.zcds:
                zcd.pulse = 0.0
            self.evaluate()
            for block in self.ccodes:
                again = block.sample(self) or again
        if again or pulses:
            self.settle()
        for zcd in self.zcds:
            zcd.last_state = zcd.mode.state
            zcd.initialised = True

    def next_breakpoint(self, end_time_s: float, max_step_s: float) -> float:
        t_next = min(end_time_s, self.t + max_step_s)
        structural = math.inf
        for block in self.timed:
            t_block = block.breakpoint(self.t)
            t_next = min(t_next, t_block)
            if not block.grid_only:
                structural = min(structural, t_block)
        self.next_structural = structural
        return t_next


class Interval:
    """``z(t0 + tau H)`` for ``tau`` in [0, 1] under the evaluation's fixed ``M``.

    Non-stiff intervals use the Taylor polynomial of ``exp(M t) z0``. Stiff ones
    (a blocking switch against an inductor: eigenvalues ~1e10/s) step with exact
    propagators ``exp(M 2^p)`` cached per evaluation; a crossing is then located by
    binary descent over those powers of two, down to round-off.
    """

    def __init__(self, evaluation: Evaluation, z0: np.ndarray, h: float):
        self.evaluation, self.m, self.z0, self.h = evaluation, evaluation.m, z0, h
        rho = evaluation.rate * h
        self.terms = None
        self.samples = None
        if rho <= 4.0:
            # Enough terms for rho^K / K! to fall below round-off.
            n_terms, bound = 1, rho
            while (bound > 1e-18 or n_terms < evaluation.min_terms) and n_terms < MAX_TERMS:
                n_terms += 1
                bound *= rho / n_terms
            scale = h ** np.arange(n_terms + 1)
            self.terms = (evaluation.taylor(n_terms) @ z0) * scale[:, None]  # (K+1, nz)

    def _walk(self, z: np.ndarray, duration: float) -> np.ndarray:
        # exp(M duration) z as a product of cached powers of two.
        while duration > 1e-16 * self.h:
            exponent = math.frexp(duration)[1] - 1  # 2^exponent <= duration
            z = self.evaluation.propagator(exponent) @ z
            duration -= math.ldexp(1.0, exponent)
        return z

    def at(self, tau: float) -> np.ndarray:
        if self.terms is not None:
            return (tau ** np.arange(len(self.terms))) @ self.terms
        if self.samples is None:
            return self._walk(self.z0, tau * self.h)
        j = min(int(tau * GUARD_SAMPLES), GUARD_SAMPLES)
        return self._walk(self.samples[:, j], (tau - _TAUS[j]) * self.h)

    def many(self, taus: np.ndarray) -> np.ndarray:
        """States at ``taus`` as columns (nz, len(taus))."""
        if self.terms is None:
            if taus is _TAUS:
                from scipy.linalg import expm

                step = expm(self.m * (self.h / GUARD_SAMPLES))
                columns = [self.z0]
                for _ in range(GUARD_SAMPLES):
                    columns.append(step @ columns[-1])
                self.samples = np.column_stack(columns)
                return self.samples
            return np.column_stack([self.at(t) for t in taus])
        powers = _TAU_POWERS if taus is _TAUS else taus[None, :] ** np.arange(MAX_TERMS + 1)[:, None]
        return self.terms.T @ powers[: len(self.terms)]

    def guard_root(self, form: np.ndarray, lo: float, hi: float) -> float:
        """The ``tau`` in [lo, hi] where ``form @ z`` changes sign."""
        if self.terms is None:
            return self._descend(form, lo, hi)
        coefficients = (self.terms @ form).tolist()[::-1]

        def f(tau: float) -> float:
            value = 0.0
            for c in coefficients:
                value = value * tau + c
            return value

        f_lo, f_hi = f(lo), f(hi)
        if f_lo <= 0.0:
            # Not violated at lo (within tolerance) but not positive: it crosses at lo.
            return lo
        if f_hi >= 0.0:
            return hi
        return _bracketed_root(f, lo, hi, f_lo, f_hi)

    def _descend(self, form: np.ndarray, lo: float, hi: float) -> float:
        # Largest t in [lo, hi] H with the guard still positive, by powers of two.
        z = self.at(lo)
        if form @ z <= 0.0:
            return lo
        elapsed, width = 0.0, (hi - lo) * self.h
        exponent = math.frexp(width)[1] - 1
        finest = exponent - 60
        while exponent >= finest:
            step = math.ldexp(1.0, exponent)
            if elapsed + step <= width:
                candidate = self.evaluation.propagator(exponent) @ z
                if form @ candidate > 0.0:
                    z, elapsed = candidate, elapsed + step
            exponent -= 1
        return min(hi, lo + (elapsed + math.ldexp(1.0, finest)) / self.h)


def _bracketed_root(f, lo: float, hi: float, f_lo: float, f_hi: float) -> float:
    """Root of ``f`` in [lo, hi] with ``f(lo) > 0 > f(hi)``: Illinois regula falsi.

    Converges superlinearly on the smooth guard polynomials; the bracket always
    shrinks, and the iteration stops at adjacent doubles.
    """
    side = 0
    for _ in range(200):
        mid = hi - f_hi * (hi - lo) / (f_hi - f_lo)
        if not lo < mid < hi:
            mid = 0.5 * (lo + hi)
            if not lo < mid < hi:
                break
        f_mid = f(mid)
        if f_mid == 0.0:
            return mid
        if f_mid > 0.0:
            lo, f_lo = mid, f_mid
            if side == 1:
                f_hi *= 0.5
            side = 1
        else:
            hi, f_hi = mid, f_mid
            if side == -1:
                f_lo *= 0.5
            side = -1
        if hi - lo <= 4e-16 * max(1.0, abs(hi)):
            break
    # The first instant at which the guard is no longer positive.
    return hi


def simulate(
    model: Model,
    end_time_s: float,
    recorders: list,
    output_step_s: float | None = None,
    max_step_s: float | None = None,
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Run the model from 0 to ``end_time_s``.

    Parameters
    ----------
    model : Model
        Configured model (see :func:`~.model.configure`).
    end_time_s : float
        Final time.
    recorders : list of callable
        ``recorder(run) -> form`` for each output signal.
    output_step_s : float, optional
        Record on this uniform grid instead of at event instants.
    max_step_s : float, optional
        Longest interval without an event (default ``end_time_s / 500``); bounds
        how long a held product, or a C Code block fed by a smooth signal, waits
        for its next evaluation.

    Returns
    -------
    time_s : numpy.ndarray
    values : numpy.ndarray
        One row per recorder.
    stats : dict
        Event counts.
    """
    if not end_time_s > 0:
        raise SpecError(f"design '{model.design_name}': EndTime must be positive, got {end_time_s}")
    max_step_s = max_step_s or end_time_s / 500.0
    run = Run(model, recorders)
    times: list[float] = []
    rows: list[np.ndarray] = []

    run.instant()
    record = run.now.record
    times.append(0.0)
    rows.append(record @ run.z)
    grid_next = output_step_s or 0.0
    # Grid points within this of an event instant take the value after the event.
    same_time = 1e-12 * end_time_s
    n_events = n_guard_events = 0
    same_instant = 0
    while run.t < end_time_s:
        t_end = run.next_breakpoint(end_time_s, max_step_s)
        h = t_end - run.t
        if h <= 0.0:
            raise SimbaflowError(f"design '{model.design_name}': time does not advance at t = {run.t:.12g} s")
        interval = Interval(run.now, run.z.copy(), h)
        guards = run.now.guards
        taus = _TAUS
        states = interval.many(taus)
        values = guards @ states
        scales = (run.now.guard_abs @ np.abs(states)).max(axis=1)
        violated = values < -REL_TOL * scales[:, None]
        violated[:, 0] = False
        hit = np.nonzero(violated.any(axis=0))[0]
        locked: set[int] = set()
        if hit.size:
            j = hit[0]
            roots = {
                k: interval.guard_root(guards[k], taus[j - 1], taus[j]) for k in np.nonzero(violated[:, j])[0]
            }
            tau = min(roots.values())
            locked = {k for k, r in roots.items() if r <= tau + 1e-12}
            t_new = run.t + tau * h if tau < 1.0 else t_end
            z_new = interval.at(tau)
            n_guard_events += 1
        else:
            tau, t_new, z_new = 1.0, t_end, states[:, -1]
        if output_step_s is not None:
            while grid_next < t_new - same_time:
                times.append(grid_next)
                rows.append(record @ interval.at((grid_next - run.t) / h))
                grid_next = round(grid_next / output_step_s + 1) * output_step_s
        same_instant = same_instant + 1 if t_new == run.t else 0
        if same_instant > MAX_EVENTS_PER_INSTANT:
            raise SimbaflowError(
                f"design '{model.design_name}': more than {MAX_EVENTS_PER_INSTANT} events at t = {run.t:.12g} s "
                "(the control chatters)"
            )
        if run.historians:
            # A located guard crossing or a block's own instant can change the dynamics;
            # an instant that only refines the grid (max step, Average windows) cannot.
            structural = bool(hit.size) or B._same_instant(t_new, run.next_structural)
            for block in run.historians:
                block.integrated(run, interval, tau, z_new, structural)
        run.z = np.array(z_new, dtype=float)
        run.t = t_new
        pre = record @ run.z
        for k in locked:
            run.guards[k].state = not run.guards[k].state
        run.instant(locked)
        n_events += 1
        record = run.now.record
        if output_step_s is None:
            post = record @ run.z
            times.append(run.t)
            rows.append(pre)
            if np.any(np.abs(pre - post) > 1e-12 * np.abs(post)):
                times.append(run.t)
                rows.append(post)
        elif abs(grid_next - run.t) <= same_time and grid_next <= end_time_s + same_time:
            times.append(grid_next)
            rows.append(record @ run.z)
            grid_next = round(grid_next / output_step_s + 1) * output_step_s
    for block in model.blocks:
        if isinstance(block, B.CCode):
            block.instance.terminate()
    values = np.array(rows).T if rows else np.zeros((len(recorders), 0))
    stats = {"events": n_events, "guard_events": n_guard_events, "topologies": len(run.topologies)}
    return np.array(times), values.reshape(len(recorders), -1), stats


def recorder(model: Model, signal: str):
    """A ``recorder(run) -> form`` for ``"<device> - <scope>"``.

    Raises
    ------
    SpecError
        When the device has no such scope; the message lists the valid scopes.
    """
    device, sep, scope = signal.partition(" - ")
    if not sep:
        raise SpecError(f"signal '{signal}': expected '<device> - <scope>', e.g. 'L1 - Current'")
    for block in model.blocks:
        if block.name == device:
            return lambda run, block=block: _checked(block.scope(scope, run), signal)
    for probe in model.probes:
        if probe.device == device:
            if scope == "Out":
                return lambda run, probe=probe: run.forms[probe.output]
            if probe.kind == "voltage" and scope == "Voltage":
                return lambda run, probe=probe: run.lift(*net_voltage(run.circuit, run.topology, probe.net))
            if probe.kind == "current" and scope == "Current":
                return lambda run, probe=probe: run.lift(*element_current(run.circuit, run.topology, probe.element))
    indices = model.element_of_device.get(device)
    if indices and scope in ("Voltage", "Current"):
        return lambda run, indices=tuple(indices): _element_scope(run, indices, scope)
    raise SpecError(
        f"signal '{signal}': the embedded engine records 'Out'/'In' of control blocks, 'Voltage'/'Current' of "
        "electrical devices and 'Out' of probes; no such scope on this device"
    )


def _checked(form, signal):
    if form is None:
        raise SpecError(f"signal '{signal}': the device has no such scope")
    return form


def _element_scope(run, indices, scope):
    index = indices[0]
    if scope == "Voltage":
        return run.lift(*element_voltage(run.circuit, run.topology, index))
    switch_of = {s.element: k for k, s in enumerate(run.model.switches)}
    conducting = run.conduction(switch_of[index]) if index in switch_of else OFF
    return run.lift(*element_current(run.circuit, run.topology, index, conducting))

