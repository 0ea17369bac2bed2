"""Event-driven exact solver for switched linear circuits with their control.

Between events the whole system (circuit states, PID integrators, carriers,
sine oscillators, Average integrals and delay chains, held values, and the
constant 1) obeys ``dz/dt = M z`` with ``M`` fixed, so ``z(t0 + h)`` is
``exp(M h) z(t0)``. It is evaluated as a Taylor series in ``h`` summed to
machine precision (the series converges fast because intervals are short
against the circuit's time constants), or, when a blocking switch makes the
interval stiff, with exact propagators ``exp(M 2^p)`` computed once per
discrete state. Nothing is discretised, so a steady state does not drift and
the output grid does not change the result.

An event is either scheduled (carrier vertex, square-wave edge, sample instant,
piecewise-linear corner) or the sign change of a *guard*: the form that keeps a
mode valid (comparator input difference, limiter margin, gate level, diode
current or voltage, zero crossing). Guards are polynomials in the interval's
time, so their roots are located to round-off (far below 1 ns) by a bracketing
root finder. At every event the modes, held outputs, sampled blocks and C Code
blocks are brought to a consistent state before integration resumes.

The event loop runs in compiled code (``kernel.c``, see :mod:`.kernel`); a run
is one call into it. This module builds what the kernel cannot: the forms,
``M``, guards and recorded forms of a discrete state (modes, switch conduction,
block segments), on the kernel's request the first time the run meets that
state (``Run.evaluate``, then cached by the kernel), and the exact propagators
of stiff intervals.
"""

from __future__ import annotations

import ctypes
import signal as _signal

import numpy as np

from simbaflow.core.errors import SimbaflowError, SpecError

from . import blocks as B
from . import kernel as K
from .circuit import CHANNEL, DIODE, OFF, element_current, element_voltage, initial_state, net_voltage, solve_topology
from .model import Model, circuit_of

#: Volatile evaluations (held products) kept alive for the kernel, which holds at most two.
_VOLATILE_KEPT = 4


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


class Evaluation:
    """Everything fixed between events for one discrete state."""

    __slots__ = ("forms", "topology", "m", "guards", "record", "inputs", "extra", "rate", "codes", "kernel_key",
                 "arrays")

    def __init__(self, forms, topology, m, guards, record, inputs, n_dynamic, codes=None):
        self.forms, self.topology, self.m = forms, topology, m
        self.guards, self.record, self.inputs, self.codes = guards, record, inputs, codes
        self.kernel_key = None  # the kernel's key of this discrete state (bytes)
        # Growth rate of the dynamic part (the constant column only adds a term).
        self.rate = np.abs(m[:n_dynamic, :n_dynamic]).sum(axis=1).max(initial=0.0) if m is not None else 0.0


def _expm(m: np.ndarray) -> np.ndarray:
    from scipy.linalg import expm  # only stiff intervals need it

    return expm(m)



class Run:
    """One simulation of a :class:`~.model.Model`: its state, and the evaluations the kernel asks for."""

    def __init__(self, model: Model, recorders: list, shared: dict | None = None):
        self.model = model
        # Evaluations of earlier runs with the same parameters and signals, by kernel key.
        self.shared = shared
        self.codes_seen: set[tuple] = set()
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
        self.samplers = [b for b in model.blocks if isinstance(b, (B.Sampled, B.CCode))]
        self.averages = [b for b in model.blocks if isinstance(b, B.Average)]
        self.min_terms = max([b.taylor_terms for b in model.blocks], default=1)
        self.now: Evaluation | None = None
        self.key: bytes | None = None  # discrete state of ``now`` (the kernel's key)
        self.evaluations: dict[int, Evaluation] = {}
        self.n_slots = 0
        self.error: BaseException | None = None

    def guard_index(self, mode: B.ModeVar) -> int:
        """Index of ``mode`` among the guards (the kernel's mode states)."""
        for k, guard in enumerate(self.guards):
            if isinstance(guard, GuardedMode) and guard.mode is mode:
                return k
        raise KeyError(mode.name)

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

    def evaluate(self) -> Evaluation:
        """Forms, system matrix, guards and recorded forms of the current discrete state."""
        codes = tuple(self.conduction(k) for k in range(len(self.switch_state)))
        topology = self.topologies.get(codes)
        if topology is None:
            topology = self.topologies[codes] = solve_topology(self.circuit, codes)
        self.now = Evaluation(None, topology, None, None, None, None, self.one)
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
        inputs = [self.forms[net] for b in self.samplers for net in b.inputs]
        inputs = np.array(inputs).reshape(len(inputs), self.nz)
        extra = [row for b in self.averages for row in b.kernel_rows(self)]
        evaluation = Evaluation(self.forms, topology, m, guards, record, inputs, self.one, codes)
        evaluation.extra = np.array(extra).reshape(len(extra), self.nz)
        self.now = evaluation
        return evaluation

    # --- kernel callbacks (each records an exception and returns 1 instead of raising) ---
    def _sync_in(self) -> None:
        self.t = float(self._io[0])
        gstate = self._gstate
        for k, guard in enumerate(self.guards):
            guard.state = bool(gstate[k])
        for block, offset in self._zcds:
            block.pulse = float(self._rt[offset])

    def _cb_evaluate(self, out) -> int:
        try:
            o = out.contents
            key = ctypes.string_at(o.key, 4 * o.nkey)
            evaluation = self.shared.get(key) if self.shared is not None else None
            cacheable = True
            if evaluation is None:
                self._sync_in()
                evaluation = self.evaluate()
                evaluation.arrays = [
                    np.ascontiguousarray(a, dtype=float)
                    for a in (evaluation.m, evaluation.guards, evaluation.record, evaluation.inputs, evaluation.extra)
                ]
                evaluation.kernel_key = key
                cacheable = not self.held_nonlinear
                if cacheable and self.shared is not None:
                    self.shared[key] = evaluation
            arrays = evaluation.arrays
            self.codes_seen.add(evaluation.codes)
            slot = self.n_slots
            self.n_slots += 1
            self.evaluations[slot] = evaluation
            if not cacheable:
                # The kernel holds the last two; older ones are never asked for again.
                self._volatile.append(slot)
                if len(self._volatile) > _VOLATILE_KEPT:
                    del self.evaluations[self._volatile.pop(0)]
            o.m, o.guards, o.record, o.inputs, o.extra = (a.ctypes.data_as(K._f64p) for a in arrays)
            o.rate = float(evaluation.rate)
            o.cacheable = int(cacheable)
            o.pyslot = slot
            self._io[1] = 0.0
            return 0
        except BaseException as exc:  # noqa: BLE001 -- re-raised after the kernel returns
            self.error = exc
            return 1

    def _cb_expm(self, slot, dt, out) -> int:
        try:
            matrix = _expm(self.evaluations[slot].m * dt)
            ctypes.memmove(out, np.ascontiguousarray(matrix).ctypes.data, matrix.nbytes)
            self._io[1] = 0.0
            return 0
        except BaseException as exc:  # noqa: BLE001
            self.error = exc
            return 1

    def _cb_expm_matrix(self, m, dt, out) -> int:
        try:
            matrix = _expm(np.ctypeslib.as_array(m, (self.nz, self.nz)) * dt)
            ctypes.memmove(out, np.ascontiguousarray(matrix).ctypes.data, matrix.nbytes)
            self._io[1] = 0.0
            return 0
        except BaseException as exc:  # noqa: BLE001
            self.error = exc
            return 1

    def _cb_poll(self) -> int:
        # Gives Python's own signal handlers (a run's time limit) a chance to run; what
        # they raise on entry reaches _unraisable.
        self._io[1] = 0.0
        return 0


def _kernel_model(run: Run, end_time_s: float, max_step_s: float, output_step_s: float | None):
    """The kernel's view of ``run``: flat arrays and callbacks (kept alive on ``run``)."""
    model = run.model
    kinds, dpar, ipar, rt = [], [], [], []
    dpar_off, ipar_off, rt_off, n_in, in0, n_out = [], [], [], [], [], []
    cc_calc, cc_next = [], []
    run._zcds = []
    inputs_seen = 0
    samplers = set(map(id, run.samplers))
    for block in model.blocks:
        kind, d, i, r = block.kernel(run)
        kinds.append(kind)
        dpar_off.append(len(dpar)); ipar_off.append(len(ipar)); rt_off.append(len(rt))
        if kind == K.K_ZCD:
            run._zcds.append((block, len(rt)))
        dpar += [float(x) for x in d]
        ipar += [int(x) for x in i]
        rt += [float(x) for x in r]
        n_in.append(len(block.inputs)); n_out.append(len(block.outputs))
        in0.append(inputs_seen)
        if id(block) in samplers:
            inputs_seen += len(block.inputs)
        instance = getattr(block, "instance", None) if kind == K.K_CCODE else None
        cc_calc.append(instance.calculate_address if instance else None)
        cc_next.append(instance.next_event_address if instance else None)
    pairs = [
        (run.guards.index(gate), run.guards.index(diode))
        for gate, diode in run.switch_state if gate is not None and diode is not None
    ]

    def i32(values):
        return np.ascontiguousarray(values, dtype=np.int32).reshape(-1) if len(values) else np.zeros(1, np.int32)

    arrays = {
        "pair_gate": i32([p[0] for p in pairs]), "pair_diode": i32([p[1] for p in pairs]),
        "kind": i32(kinds), "state0": i32([b.state0 for b in model.blocks]), "n_in": i32(n_in), "in0": i32(in0),
        "n_out": i32(n_out), "dpar_off": i32(dpar_off), "rt_off": i32(rt_off), "ipar_off": i32(ipar_off),
        "ipar": i32(ipar),
    }
    run._dpar = np.array(dpar + [0.0])
    run._rt = np.array(rt + [0.0])
    run._io = np.zeros(4)
    run._gstate = np.array([g.state for g in run.guards] + [0], dtype=np.int8)
    run._volatile = []
    n_blocks = max(len(model.blocks), 1)
    run._cc_calc = (ctypes.c_void_p * n_blocks)(*cc_calc)
    run._cc_next = (ctypes.c_void_p * n_blocks)(*cc_next)
    run._callbacks = [
        K.EVALUATE(run._cb_evaluate), K.EXPM(run._cb_expm), K.EXPM_MATRIX(run._cb_expm_matrix), K.POLL(run._cb_poll),
    ]
    run._arrays = arrays
    s = K.ModelStruct()
    s.nz, s.ng, s.nr = run.nz, len(run.guards), len(run.recorders)
    s.ni, s.one, s.min_terms = inputs_seen, run.one, run.min_terms
    s.npairs = len(pairs)
    for name, array in arrays.items():
        setattr(s, name, array.ctypes.data_as(K._i32p))
    s.nblocks = len(model.blocks)
    s.dpar, s.rt, s.io = (a.ctypes.data_as(K._f64p) for a in (run._dpar, run._rt, run._io))
    s.z = run.z.ctypes.data_as(K._f64p)
    s.gstate = run._gstate.ctypes.data_as(K._i8p)
    s.cc_calc = ctypes.cast(run._cc_calc, ctypes.POINTER(ctypes.c_void_p))
    s.cc_next = ctypes.cast(run._cc_next, ctypes.POINTER(ctypes.c_void_p))
    s.end_time, s.max_step = end_time_s, max_step_s
    s.output_step = output_step_s if output_step_s else 0.0
    s.n_extra = 3 * len(run.averages)
    s.evaluate, s.expm, s.expm_matrix, s.poll = run._callbacks
    return s


_previous_unraisable_hook = None


def _unraisable(unraisable) -> None:
    """Keep what a kernel callback raised before its own ``try`` (a signal handler's exception)."""
    run = getattr(unraisable.object, "__self__", None)
    if isinstance(run, Run):
        if run.error is None:
            run.error = unraisable.exc_value
        return
    _previous_unraisable_hook(unraisable)


def _catch_callback_exceptions() -> None:
    global _previous_unraisable_hook
    import sys

    if sys.unraisablehook is not _unraisable:
        _previous_unraisable_hook = sys.unraisablehook
        sys.unraisablehook = _unraisable


_SIGNALS = {int(_signal.SIGSEGV): "SIGSEGV", int(_signal.SIGBUS): "SIGBUS", int(_signal.SIGFPE): "SIGFPE",
            int(_signal.SIGILL): "SIGILL"}


def simulate(
    model: Model,
    end_time_s: float,
    recorders: list,
    output_step_s: float | None = None,
    max_step_s: float | None = None,
    evaluations: dict | None = None,
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
    evaluations : dict, optional
        Evaluations kept from earlier runs of the model with the same parameter
        values and recorders (filled in by this run).

    Returns
    -------
    time_s : numpy.ndarray
    values : numpy.ndarray
        One row per recorder.
    stats : dict
        Event counts.

    Raises
    ------
    SimbaflowError
        When the run fails: chattering modes, a fault in a C Code block or the
        kernel (named, with the instant), time not advancing.
    """
    if not end_time_s > 0:
        raise SpecError(f"design '{model.design_name}': EndTime must be positive, got {end_time_s}")
    max_step_s = max_step_s or end_time_s / 500.0
    lib = K.library()
    lib.sf_install_handlers()
    _catch_callback_exceptions()
    codes = [b for b in model.blocks if isinstance(b, B.CCode)]
    run = Run(model, recorders, evaluations)
    s = _kernel_model(run, end_time_s, max_step_s, output_step_s)
    result = K.ResultStruct()
    try:
        rc = lib.sf_run(ctypes.byref(s), ctypes.byref(result))
        n, nr = result.n, len(recorders)
        times, values = np.empty(n), np.empty((nr, n))
        lib.sf_take(ctypes.byref(result), nr, times.ctypes.data_as(K._f64p), values.ctypes.data_as(K._f64p))
    finally:
        lib.sf_free_result(ctypes.byref(result))
    if rc == K.SF_OK:
        for block in codes:
            block.instance.terminate()
    _raise_failure(run, rc, result, model)
    stats = {"events": int(result.events), "guard_events": int(result.guard_events), "topologies": len(run.codes_seen)}
    return times, values.reshape(nr, -1), stats


def _raise_failure(run: Run, rc: int, result, model: Model) -> None:
    name = model.design_name
    if rc == K.SF_OK:
        return
    if rc == K.SF_PYTHON:
        error = run.error or SimbaflowError(f"design '{name}': the kernel's callback failed")
        raise error
    at = f"t = {result.fail_t:.12g} s"
    if rc == K.SF_CHATTER:
        names = ", ".join(g.name for g in run.guards)
        raise SimbaflowError(
            f"design '{name}': the modes of {names} do not settle at {at} (the circuit chatters); check the control logic"
        )
    if rc == K.SF_INSTANT:
        raise SimbaflowError(f"design '{name}': more than 200 events at {at} (the control chatters)")
    if rc == K.SF_STUCK:
        raise SimbaflowError(f"design '{name}': time does not advance at {at}")
    if rc == K.SF_SIGNAL:
        signal_name = _SIGNALS.get(result.fail_signal, f"signal {result.fail_signal}")
        if result.fail_block >= 0:
            block = model.blocks[result.fail_block]
            raise SimbaflowError(f"C Code block '{block.name}' crashed ({signal_name}) at {at}; the run is abandoned")
        raise SimbaflowError(f"design '{name}': the embedded engine's kernel crashed ({signal_name}) at {at}")
    if rc == K.SF_MEMORY:
        raise SimbaflowError(f"design '{name}': out of memory at {at}")
    raise SimbaflowError(f"design '{name}': the kernel failed with code {rc}")


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

