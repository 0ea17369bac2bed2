"""Control blocks of SIMBA's library as affine maps on the solver state.

Between two events every control signal is an affine function of the solver
state ``z = [circuit states, control states, 1]``: a *form*, a vector ``f``
with value ``f @ z``. A block turns its input forms into output forms; held
values (comparator outputs, samples, C Code outputs) are constants; carriers,
piecewise-linear sources, oscillators and integrators are states. A carrier
state is reset to its exact analytic value at every event, so it never drifts. Discontinuities are *mode variables*
(:class:`ModeVar`): a boolean that must agree with the sign of a form; the
solver locates the instant a form changes sign and flips the mode there.

Behaviour follows SIMBA's model library documentation (doc.simba.io, "Model
Library") and the published results of the reference project; each block cites
what it relies on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, ClassVar

import numpy as np

from simbaflow.core.errors import SpecError
from simbaflow.simulate.simba_values import is_none, parse_matrix, parse_optional, parse_value, parse_vector

from . import kernel as K


@dataclass
class ModeVar:
    """A boolean that must equal ``form(z) > 0`` between events.

    ``form`` returns the current form of the guarded quantity.
    """

    form: Callable[[], np.ndarray]
    state: bool = False
    name: str = ""


@dataclass
class Block:
    """One control device.

    Attributes
    ----------
    library, name : str
        SIMBA library item and device name.
    inputs, outputs : list of int
        Net of each input / output pin, in pin order.
    params : dict
        Raw SIMBA parameter strings (re-parsed by :meth:`configure`).
    """

    library: str
    name: str
    inputs: list[int]
    outputs: list[int]
    params: dict[str, str]
    #: States the block adds to the solver state (held outputs count as states of rate 0).
    n_states: ClassVar[int] = 0
    #: Whether those states are held values (constant between events).
    holds: ClassVar[bool] = False
    #: Taylor terms every interval needs at least (see :class:`Average`).
    taylor_terms: ClassVar[int] = 1
    state0: int = 0  # index of the first own state in z
    modes: list[ModeVar] = field(default_factory=list)

    # --- set-up -----------------------------------------------------------------
    def configure(self, variables: dict[str, float]) -> None:
        """Parse the parameters (called before every run)."""

    def value(self, key: str, variables: dict[str, float], default: str | None = None) -> float:
        text = self.params.get(key, default)
        if text is None:
            raise SpecError(f"device '{self.name}' ({self.library}): parameter '{key}' is missing")
        return parse_value(text, variables, device=self.name, parameter=key)

    def sampling_time(self, variables: dict[str, float]) -> float | None:
        text = self.params.get("SamplingTime", "none")
        if text.strip().lower() in ("auto", "0"):
            return None
        ts = parse_optional(text, variables, device=self.name, parameter="SamplingTime")
        if ts is not None and ts <= 0:
            return None
        return ts

    def reset(self, run) -> None:
        """Per-run state and initial values of own states in ``run.z``."""

    # --- between events -----------------------------------------------------------
    def evaluate(self, run) -> None:
        """Set ``run.forms`` of the outputs from the input forms."""

    def derivatives(self, run, m: np.ndarray) -> None:
        """Write the rows of own states into the system matrix ``m``."""

    def scope(self, scope: str, run) -> np.ndarray | None:
        """Form of a scope signal, or None when the block has no such scope."""
        if scope == "Out" and self.outputs:
            return run.forms[self.outputs[0]]
        if scope == "In" and self.inputs:
            return run.forms[self.inputs[0]]
        return None

    # --- the compiled kernel ---------------------------------------------------------
    def kernel(self, run) -> tuple[int, list[float], list[int], list[float]]:
        """What the kernel runs at events: ``(kind, dpar, ipar, rt)`` (see kernel.c).

        ``dpar`` holds parameters, ``ipar`` integer parameters, ``rt`` the initial
        run-time state the kernel updates; blocks with no event behaviour (their
        outputs are forms, rebuilt by :meth:`evaluate` per discrete state) are
        ``K_NONE``. A block whose segment, pulse or step decides its forms also
        has a kernel key (kernel.c, ``block_key``), so the kernel caches one
        evaluation per value.
        """
        return K.K_NONE, [], [], []


def _constant(run, value: float) -> np.ndarray:
    form = np.zeros(run.nz)
    form[run.one] = value
    return form


def _is_constant(run, form: np.ndarray) -> bool:
    # Constant between events: weight only on 1 and on held values.
    return not np.any(form[run.moving])


def _holds_samples(run, form: np.ndarray) -> bool:
    # Weight on a held value: the value changes at events without changing the cache key.
    return bool(np.any(form[run.held]))


class Constant(Block):
    def configure(self, variables):
        self.level = self.value("Value", variables)

    def evaluate(self, run):
        run.forms[self.outputs[0]] = _constant(run, self.level)


class Step(Block):
    # Out = InitialValue before StepTime, FinalValue from StepTime on.
    def configure(self, variables):
        self.initial = self.value("InitialValue", variables, "0")
        self.final = self.value("FinalValue", variables, "1")
        self.step_time = self.value("StepTime", variables, "0")

    def evaluate(self, run):
        run.forms[self.outputs[0]] = _constant(run, self.final if run.t >= self.step_time else self.initial)

    def kernel(self, run):
        return K.K_STEP, [self.step_time], [], []


class Periodic(Block):
    """Square, triangular and sawtooth waves: piecewise linear in time.

    A period starts at phase ``PhaseShift/360`` (a positive shift advances the
    wave, as ``sin(2 pi f t + phase)``). Within a period, ``_edges`` are the
    fractions where the shape changes and ``_levels(k)`` gives the value at the
    start and end of segment ``k``. Sloped waves keep their value in a state
    whose rate is the segment's slope.
    """

    n_states = 1

    def configure(self, variables):
        self.amplitude = self.value("Amplitude", variables, "1")
        self.frequency = self.value("Frequency", variables, "1000")
        self.offset = self.value("Offset", variables, "0")
        self.phase = self.value("PhaseShift", variables, "0") / 360.0
        self.duty = self.value("DutyCycle", variables, "0.5") if "DutyCycle" in self.params else 0.5
        if self.frequency <= 0:
            raise SpecError(f"device '{self.name}' ({self.library}): Frequency must be positive, got {self.frequency}")
        if not 0.0 <= self.duty <= 1.0:
            raise SpecError(f"device '{self.name}' ({self.library}): DutyCycle must be within 0..1, got {self.duty}")
        self.edges = self._edges()
        self._located = (None, None)

    def _edges(self):
        return (0.0, 1.0)

    def _locate(self, t):
        """Period number, segment and fraction of the period at ``t``."""
        if t == self._located[0]:
            return self._located[1]
        self._located = (t, self._find(t))
        return self._located[1]

    _located = (None, None)

    def _find(self, t):
        u = t * self.frequency + self.phase
        n = math.floor(u)
        r = u - n
        # Instants on an edge up to rounding belong to the segment that starts there.
        tolerance = 1e-9
        if r > 1.0 - tolerance:
            n, r = n + 1, 0.0
        edges = self.edges
        for k in range(len(edges) - 1):
            if abs(r - edges[k + 1]) < tolerance:
                r = edges[k + 1]
            if edges[k] <= r < edges[k + 1]:
                return n, k, r
        return n, len(edges) - 2, r

    def _slope(self, k):
        start, end = self._levels(k)
        width = (self.edges[k + 1] - self.edges[k]) / self.frequency
        return (end - start) / width if width > 0 else 0.0

    def evaluate(self, run):
        form = np.zeros(run.nz)
        form[self.state0] = 1.0
        run.forms[self.outputs[0]] = form

    def derivatives(self, run, m):
        m[self.state0, run.one] = self._slope(self._locate(run.t)[1])

    def kernel(self, run):
        segments = range(len(self.edges) - 1)
        starts = [self._levels(k)[0] for k in segments]
        slopes = [self._slope(k) for k in segments]
        kind = K.K_SQUARE if isinstance(self, SquareWave) else K.K_SLOPED
        return kind, [self.frequency, self.phase, len(self.edges), *self.edges, *starts, *slopes], [], []


class SquareWave(Periodic):
    # SIMBA: Offset + Amplitude while high (the first DutyCycle of the period), Offset
    # while low; the reference project's current reference is 14 A for 5 ms, then 6 A.
    def _edges(self):
        return (0.0, self.duty, 1.0) if 0.0 < self.duty < 1.0 else (0.0, 1.0)

    def _levels(self, k):
        high = self.offset + self.amplitude
        if self.duty >= 1.0:
            return high, high
        if self.duty <= 0.0:
            return self.offset, self.offset
        level = high if k == 0 else self.offset
        return level, level

    n_states = 0

    def evaluate(self, run):
        level, _ = self._levels(self._locate(run.t)[1])
        run.forms[self.outputs[0]] = _constant(run, level)

    def derivatives(self, run, m):
        pass


class TriangularWave(Periodic):
    # Rises from Offset to Offset + Amplitude over DutyCycle of the period, then falls back.
    def _edges(self):
        return (0.0, self.duty, 1.0) if 0.0 < self.duty < 1.0 else (0.0, 1.0)

    def _levels(self, k):
        low, high = self.offset, self.offset + self.amplitude
        if self.duty >= 1.0:
            return low, high
        if self.duty <= 0.0:
            return high, low
        return (low, high) if k == 0 else (high, low)


class SawtoothWave(Periodic):
    # Rises from Offset to Offset + Amplitude over each period, then drops back.
    def _levels(self, k):
        return self.offset, self.offset + self.amplitude


class SineWave(Block):
    # Offset + Amplitude sin(2 pi f t + phase), generated by two oscillator states so
    # the solver integrates it exactly with the rest of the system.
    n_states = 2

    def configure(self, variables):
        self.amplitude = self.value("Amplitude", variables, "1")
        self.omega = 2 * math.pi * self.value("Frequency", variables, "1000")
        self.offset = self.value("Offset", variables, "0")
        self.phase = math.radians(self.value("PhaseShift", variables, "0"))

    def reset(self, run):
        run.z[self.state0] = math.sin(self.phase)
        run.z[self.state0 + 1] = math.cos(self.phase)

    def derivatives(self, run, m):
        s, c = self.state0, self.state0 + 1
        m[s, c] = self.omega
        m[c, s] = -self.omega

    def evaluate(self, run):
        form = _constant(run, self.offset)
        form[self.state0] = self.amplitude
        run.forms[self.outputs[0]] = form


class PiecewiseLinear(Block):
    # TimeValueMatrix rows (time, value), linear in between; the first value holds
    # before the first time and the last value after the last time.
    def configure(self, variables):
        table = parse_matrix(self.params.get("TimeValueMatrix", ""), variables, device=self.name,
                             parameter="TimeValueMatrix")
        if table.shape[1] != 2 or np.any(np.diff(table[:, 0]) < 0):
            raise SpecError(
                f"device '{self.name}' (Piecewise Linear): TimeValueMatrix must be rows of 'time value' "
                "with non-decreasing times"
            )
        self.times, self.values = table[:, 0].copy(), table[:, 1].copy()

    n_states = 1

    def _segment(self, t):
        return int(np.searchsorted(self.times, t, side="right"))

    def _slope(self, k):
        if k == 0 or k >= len(self.times):
            return 0.0
        t0, t1 = self.times[k - 1], self.times[k]
        return (self.values[k] - self.values[k - 1]) / (t1 - t0) if t1 > t0 else 0.0

    def evaluate(self, run):
        form = np.zeros(run.nz)
        form[self.state0] = 1.0
        run.forms[self.outputs[0]] = form

    def derivatives(self, run, m):
        m[self.state0, run.one] = self._slope(self._segment(run.t))

    def kernel(self, run):
        slopes = [self._slope(k) for k in range(len(self.times) + 1)]
        return K.K_PWL, [len(self.times), *self.times.tolist(), *self.values.tolist(), *slopes], [], []


class Gain(Block):
    def configure(self, variables):
        self.gain = self.value("Value", variables, "1")

    def evaluate(self, run):
        run.forms[self.outputs[0]] = self.gain * run.forms[self.inputs[0]]


class Sum(Block):
    # Out = sum of Gains[k] * inputs[k] (Gains "[1 -1]" subtracts the second input).
    def configure(self, variables):
        self.gains = parse_vector(self.params.get("Gains", "[1 1]"), variables, device=self.name, parameter="Gains")
        if len(self.gains) != len(self.inputs):
            raise SpecError(
                f"device '{self.name}' (Sum): Gains has {len(self.gains)} values for {len(self.inputs)} inputs"
            )

    def evaluate(self, run):
        form = np.zeros(run.nz)
        for gain, net in zip(self.gains, self.inputs):
            form += gain * run.forms[net]
        run.forms[self.outputs[0]] = form


class Product(Block):
    # Exact when at most one factor varies between events (the reference's power
    # estimate iL x Power_K); otherwise the product is held from the last event.
    def evaluate(self, run):
        a, b = run.forms[self.inputs[0]], run.forms[self.inputs[1]]
        if _is_constant(run, a):
            run.held_nonlinear |= _holds_samples(run, a)
            run.forms[self.outputs[0]] = (a @ run.z) * b
        elif _is_constant(run, b):
            run.held_nonlinear |= _holds_samples(run, b)
            run.forms[self.outputs[0]] = (b @ run.z) * a
        else:
            run.held_nonlinear = True
            run.forms[self.outputs[0]] = _constant(run, (a @ run.z) * (b @ run.z))


class Division(Block):
    # In1 / In2; exact when the divisor is constant between events, held otherwise.
    def evaluate(self, run):
        a, b = run.forms[self.inputs[0]], run.forms[self.inputs[1]]
        divisor = b @ run.z
        if divisor == 0.0:
            raise SpecError(f"device '{self.name}' (Division): division by zero at t = {run.t:.9g} s")
        if _is_constant(run, b):
            run.held_nonlinear |= _holds_samples(run, b)
            run.forms[self.outputs[0]] = a / divisor
        else:
            run.held_nonlinear = True
            run.forms[self.outputs[0]] = _constant(run, (a @ run.z) / divisor)


class Limiter(Block):
    # Out = In clipped to [LowLimit, HighLimit]; the clip engages at the located instant.
    def configure(self, variables):
        self.low = self.value("LowLimit", variables, "-10")
        self.high = self.value("HighLimit", variables, "10")
        if self.low > self.high:
            raise SpecError(f"device '{self.name}' (Limiter): LowLimit {self.low} is above HighLimit {self.high}")

    def reset(self, run):
        source = lambda: run.forms[self.inputs[0]]  # noqa: E731
        self.above_low = ModeVar(lambda: source() - _constant(run, self.low), True, f"{self.name} low")
        self.above_high = ModeVar(lambda: source() - _constant(run, self.high), False, f"{self.name} high")
        self.modes = [self.above_low, self.above_high]

    def evaluate(self, run):
        if not self.above_low.state:
            run.forms[self.outputs[0]] = _constant(run, self.low)
        elif self.above_high.state:
            run.forms[self.outputs[0]] = _constant(run, self.high)
        else:
            run.forms[self.outputs[0]] = run.forms[self.inputs[0]]


class Comparator(Block):
    # Out = 1 when In1 > In2, else 0 (SIMBA Comparator); switches at the crossing.
    def reset(self, run):
        self.mode = ModeVar(lambda: run.forms[self.inputs[0]] - run.forms[self.inputs[1]], False, self.name)
        self.modes = [self.mode]

    def evaluate(self, run):
        run.forms[self.outputs[0]] = _constant(run, 1.0 if self.mode.state else 0.0)


class Not(Block):
    # Logical not: 1 when the input is low (below 0.5), 0 when high.
    def reset(self, run):
        self.mode = ModeVar(lambda: run.forms[self.inputs[0]] - _constant(run, 0.5), False, self.name)
        self.modes = [self.mode]

    def evaluate(self, run):
        run.forms[self.outputs[0]] = _constant(run, 0.0 if self.mode.state else 1.0)


class ZeroCrossingDetector(Block):
    # SIMBA: Out = 1 if In_prev < 0 and In >= 0, -1 if In_prev >= 0 and In < 0, 0 otherwise.
    # The pulse lasts the instant of the crossing: blocks evaluated at that instant
    # (C Code, samplers) see it, the waveform between events is 0.
    def reset(self, run):
        # "In >= 0" as a mode: the guarded form is In itself, state True when In >= 0.
        self.mode = ModeVar(lambda: run.forms[self.inputs[0]], True, self.name)
        self.modes = [self.mode]
        self.pulse = 0.0  # set by the kernel before each evaluation

    def evaluate(self, run):
        run.forms[self.outputs[0]] = _constant(run, self.pulse)

    def kernel(self, run):
        # rt: pulse, last mode state, initialised.
        return K.K_ZCD, [], [run.guard_index(self.mode)], [0.0, 0.0, 0.0]


class PID(Block):
    """SIMBA's continuous PID: Kp + Ki/s + Kd s (doc.simba.io, Control > Continuous > PID).

    The integral contribution is a state (initial value ``Iinit``); the
    derivative is filtered by ``Kf`` (time constant 1/Kf, required when Kd != 0).
    Output saturation Umin/Umax with anti-windup ``IntegrationMethod`` 0 (none),
    1 (conditional integration: frozen while saturated and error of the same sign),
    2 (back-calculation with gain Kb). The reference's published waveforms match a
    plain PI (Kd = 0, infinite limits, no anti-windup).
    """

    n_states = 2

    def configure(self, variables):
        self.kp = self.value("Kp", variables, "1")
        self.ki = self.value("Ki", variables, "0.01")
        self.kd = self.value("Kd", variables, "0.1")
        self.kf = self.value("Kf", variables, "0")
        self.kb = self.value("Kb", variables, "0")
        self.umin = self.value("Umin", variables, "-inf")
        self.umax = self.value("Umax", variables, "inf")
        self.iinit = self.value("Iinit", variables, "0")
        self.antiwindup = int(self.value("IntegrationMethod", variables, "0"))
        saturation = int(self.value("SaturationMethod", variables, "0"))
        if self.kd != 0.0 and self.kf <= 0.0:
            raise SpecError(
                f"device '{self.name}' (PID): Kd = {self.kd} needs a derivative filter; set Kf > 0 "
                "(an unfiltered derivative of a switched signal is not supported)"
            )
        if self.antiwindup not in (0, 1, 2):
            raise SpecError(
                f"device '{self.name}' (PID): IntegrationMethod {self.antiwindup} is not supported; "
                "supported: 0 (no anti-windup), 1 (conditional integration), 2 (back-calculation)"
            )
        if saturation != 0:
            raise SpecError(f"device '{self.name}' (PID): SaturationMethod {saturation} is not supported; supported: 0")
        if self.umin > self.umax:
            raise SpecError(f"device '{self.name}' (PID): Umin {self.umin} is above Umax {self.umax}")

    def reset(self, run):
        run.z[self.state0] = self.iinit
        run.z[self.state0 + 1] = 0.0
        self.modes = []
        self.above_min = self.above_max = self.error_positive = None
        if math.isfinite(self.umin):
            self.above_min = ModeVar(lambda: self._unsaturated(run) - _constant(run, self.umin), True, f"{self.name} Umin")
            self.modes.append(self.above_min)
        if math.isfinite(self.umax):
            self.above_max = ModeVar(lambda: self._unsaturated(run) - _constant(run, self.umax), False, f"{self.name} Umax")
            self.modes.append(self.above_max)
        if self.antiwindup == 1 and self.modes:
            self.error_positive = ModeVar(lambda: run.forms[self.inputs[0]], True, f"{self.name} error")
            self.modes.append(self.error_positive)

    def _parts(self, run):
        e = run.forms[self.inputs[0]]
        p = self.kp * e
        i = np.zeros(run.nz)
        i[self.state0] = 1.0
        d = np.zeros(run.nz)
        if self.kd != 0.0:
            # D = Kd Kf (e - w), w' = Kf (e - w): Kd s / (1 + s / Kf).
            d = self.kd * self.kf * e
            d[self.state0 + 1] -= self.kd * self.kf
        return e, p, i, d

    def _unsaturated(self, run):
        _, p, i, d = self._parts(run)
        return p + i + d

    def _saturation(self):
        if self.above_min is not None and not self.above_min.state:
            return -1
        if self.above_max is not None and self.above_max.state:
            return 1
        return 0

    def evaluate(self, run):
        saturated = self._saturation()
        if saturated < 0:
            run.forms[self.outputs[0]] = _constant(run, self.umin)
        elif saturated > 0:
            run.forms[self.outputs[0]] = _constant(run, self.umax)
        else:
            run.forms[self.outputs[0]] = self._unsaturated(run)

    def derivatives(self, run, m):
        e, p, i, d = self._parts(run)
        row = self.ki * e
        saturated = self._saturation()
        if saturated and self.antiwindup == 1 and (saturated > 0) == self.error_positive.state:
            row = np.zeros(run.nz)
        elif saturated and self.antiwindup == 2:
            limit = self.umax if saturated > 0 else self.umin
            row = row + self.kb * (_constant(run, limit) - (p + i + d))
        m[self.state0] = row
        if self.kd != 0.0:
            w = np.zeros(run.nz)
            w[self.state0 + 1] = 1.0
            m[self.state0 + 1] = self.kf * (e - w)

    def scope(self, scope, run):
        _, p, i, d = self._parts(run)
        named = {
            "Proportional contribution": p,
            "Integrale contribution": i,
            "Integral contribution": i,
            "Derivative contribution": d,
            "Output before saturation": p + i + d,
        }
        return named.get(scope, super().scope(scope, run))


class Sampled(Block):
    """Blocks updated only at multiples of SamplingTime, output held in between."""

    holds = True

    def configure(self, variables):
        self.ts = self.sampling_time(variables)
        if self.ts is None:
            raise SpecError(f"device '{self.name}' ({self.library}): SamplingTime must be a positive period in seconds")
        self.configure_sampled(variables)

    def configure_sampled(self, variables):
        pass

    @property
    def n_states(self):
        return len(self.outputs)

    def reset(self, run):
        run.z[self.state0 : self.state0 + len(self.outputs)] = 0.0

    def evaluate(self, run):
        for k, net in enumerate(self.outputs):
            form = np.zeros(run.nz)
            form[self.state0 + k] = 1.0
            run.forms[net] = form



class ZeroOrderHold(Sampled):

    def kernel(self, run):
        return K.K_ZOH, [self.ts], [], [0.0, 0.0]


class DiscreteTransferFunction(Sampled):
    # Num/Den in decreasing powers of z, realised in transposed direct form II.
    def configure_sampled(self, variables):
        num = parse_vector(self.params.get("Num", "[1]"), variables, device=self.name, parameter="Num")
        den = parse_vector(self.params.get("Den", "[1]"), variables, device=self.name, parameter="Den")
        if den[0] == 0.0:
            raise SpecError(f"device '{self.name}' (Discrete Transfer Function): Den must start with a non-zero coefficient")
        if len(num) > len(den):
            raise SpecError(f"device '{self.name}' (Discrete Transfer Function): Num has a higher order than Den")
        num = np.concatenate([np.zeros(len(den) - len(num)), num])
        self.num, self.den = num / den[0], den / den[0]

    def kernel(self, run):
        n_memory = len(self.den) - 1
        return K.K_DTF, [self.ts, n_memory, *self.num.tolist(), *self.den.tolist()], [], [0.0, 0.0] + [0.0] * n_memory


class DiscretePID(Sampled):
    """Sampled PID: P = Kp e[k], I[k] = I[k-1] + Ki Ts e[k] (backward Euler),
    D = Kd (e[k] - e[k-1]) / Ts, output clipped to [Umin, Umax]; back-calculation
    (IntegrationMethod 2) subtracts Kb Ts (u - sat(u)) from the integral."""

    def configure_sampled(self, variables):
        self.kp = self.value("Kp", variables, "1")
        self.ki = self.value("Ki", variables, "0.01")
        self.kd = self.value("Kd", variables, "0.1")
        self.kb = self.value("Kb", variables, "0")
        self.umin = self.value("Umin", variables, "-inf")
        self.umax = self.value("Umax", variables, "inf")
        self.iinit = self.value("Iinit", variables, "0")
        self.antiwindup = int(self.value("IntegrationMethod", variables, "0"))
        if self.antiwindup not in (0, 1, 2):
            raise SpecError(
                f"device '{self.name}' (Discrete PID): IntegrationMethod {self.antiwindup} is not supported; "
                "supported: 0, 1, 2"
            )

    def kernel(self, run):
        # rt: next sample, held output, integral, previous error, whether there is one.
        parameters = [self.ts, self.kp, self.ki, self.kd, self.kb, self.umin, self.umax, self.antiwindup]
        return K.K_DPID, parameters, [], [0.0, 0.0, self.iinit, 0.0, 0.0]


#: Chebyshev-Lobatto nodes on [0, 1] (a window's fit) and the midpoints between them (its check).
_FIT_DEGREE = 8
_FIT_NODES = (1.0 - np.cos(np.pi * np.arange(_FIT_DEGREE + 1) / _FIT_DEGREE)) / 2.0
_FIT_CHECK = (1.0 - np.cos(np.pi * (np.arange(_FIT_DEGREE) + 0.5) / _FIT_DEGREE)) / 2.0
_FIT_VANDER = np.vander(_FIT_NODES, _FIT_DEGREE + 1, increasing=True)
_FIT_FACTORIALS = np.array([math.factorial(j) for j in range(_FIT_DEGREE + 1)], dtype=float)


class Average(Block):
    """SIMBA's Average (Control > Math > Average): the mean of the input over the last period.

    ``Out(t) = (1/T) * integral of In over [t - T, t]`` with ``T = 1/Frequency``.
    SIMBA documents only the parameter names (``Frequency``, ``Initial``,
    ``SamplingTime``); we take ``Initial`` as the input's value before t = 0, so
    that during the first period the window's part before 0 contributes
    ``Initial * (T - t)`` and a constant input equal to ``Initial`` averages to
    itself from the start.

    The running integral ``I = integral of In from 0`` is a state integrated with
    the rest of the system (exact, as the PID's). ``D(t) = I(t - T)`` comes from
    the history of ``I``: after every interval the solver's own representation of
    ``I`` over it is kept (its Taylor polynomial, or the interval itself when it
    was integrated with exact propagators). Over a window of ``t - T`` (at most
    T/4) the history is fitted by a degree-8 polynomial, checked against the
    history between the fit nodes and the window halved until they agree to
    1e-11 of the window's variation; ``D`` is then carried by a chain of states
    ``D, D', ..., D^(8)`` (each the rate of the previous, the last constant),
    which the solver integrates exactly, so ``Out`` is affine in the state like
    every other signal. The end of a window is an instant. Windows stop at 0 (end
    of the ``Initial`` part) and where the input's value or first two derivatives
    jumped at an instant where the model changed (a *kink*: a step, an edge, a
    switching), so such an instant reappears exactly T later. ``Out`` is exact to
    round-off for piecewise-polynomial inputs (steps, ramps, square waves) and
    within ~1e-11 of the window's variation for smooth ones, whatever the output
    grid. An input that jumps at every instant (a held Product of two varying
    signals, a C Code block without SamplingTime) is fitted as it is, windows
    halved at most 8 times. The history, kinks and fits live in the kernel
    (kernel.c, "Average"); this class gives its parameters and forms.
    """

    DEGREE: ClassVar[int] = _FIT_DEGREE
    #: The integral, then the chain D, D', ..., D^(DEGREE).
    n_states: ClassVar[int] = 2 + _FIT_DEGREE
    taylor_terms: ClassVar[int] = _FIT_DEGREE
    #: Relative disagreement between a window's fit and the history at which the window is halved.
    FIT_TOL: ClassVar[float] = 1e-11
    #: Halvings after which a window is taken as it is (an input jumping at every instant).
    MAX_HALVINGS: ClassVar[int] = 8
    #: Jump of the input or its derivatives (times T, T^2), relative to the largest, that makes a kink.
    KINK_TOL: ClassVar[float] = 1e-9

    def configure(self, variables):
        if has_sampling(self.params):
            raise SpecError(
                f"device '{self.name}' (Average): SamplingTime {self.params.get('SamplingTime')!r} is not supported "
                "by the embedded engine; supported: none (continuous)"
            )
        frequency_hz = self.value("Frequency", variables)
        if not frequency_hz > 0 or not math.isfinite(frequency_hz):
            raise SpecError(f"device '{self.name}' (Average): Frequency must be positive, got {frequency_hz}")
        self.period_s = 1.0 / frequency_hz
        self.initial = self.value("Initial", variables, "0")

    # --- history ----------------------------------------------------------------------
    def reset(self, run):
        # The kernel keeps the history and fits the windows (kernel.c, "Average").
        run.z[self.state0 : self.state0 + self.n_states] = 0.0

    def kernel(self, run):
        parameters = [self.period_s, self.initial, self.FIT_TOL, self.KINK_TOL, self.MAX_HALVINGS, self.DEGREE,
                      *_FIT_NODES, *_FIT_CHECK, *_FIT_VANDER.ravel(), *_FIT_FACTORIALS]
        return K.K_AVERAGE, parameters, [], []

    def kernel_rows(self, run) -> list[np.ndarray]:
        """In, T In' and T^2 In'' as forms, the kernel's test for a kink at an instant.

        Each derivative is taken as the change it makes over a period, so one scale
        judges them all (the derivatives of a fitted signal, another Average's Out,
        carry round-off that is large against their own size but not against the signal).
        """
        f = run.forms[self.inputs[0]]
        return [f, self.period_s * (f @ run.m), self.period_s**2 * (f @ run.m @ run.m)]

    # --- between and at events ----------------------------------------------------------
    def evaluate(self, run):
        form = np.zeros(run.nz)
        form[self.state0] = 1.0 / self.period_s
        form[self.state0 + 1] = -1.0 / self.period_s
        run.forms[self.outputs[0]] = form

    def derivatives(self, run, m):
        m[self.state0] = run.forms[self.inputs[0]]
        for j in range(self.DEGREE):
            m[self.state0 + 1 + j, self.state0 + 2 + j] = 1.0


class ControlScope(Block):
    def scope(self, scope, run):
        if scope == "Value":
            return run.forms[self.inputs[0]]
        return super().scope(scope, run)


class CCode(Block):
    """SIMBA C Code block: the code's ``calculate_outputs`` runs at every event
    instant (SamplingTime none) or at multiples of SamplingTime; outputs are held
    in between. Events include every clock edge, so code clocked by a square wave
    through a Zero-Crossing Detector (the reference's discrete PI) acts exactly at
    its clock instants."""

    holds = True

    def configure(self, variables):
        self.ts = self.sampling_time(variables)

    @property
    def n_states(self):
        return len(self.outputs)

    def reset(self, run):
        self.instance.initialize()
        run.z[self.state0 : self.state0 + len(self.outputs)] = 0.0

    def evaluate(self, run):
        for k, net in enumerate(self.outputs):
            form = np.zeros(run.nz)
            form[self.state0 + k] = 1.0
            run.forms[net] = form

    def scope(self, scope, run):
        for prefix, nets in (("inputs", self.inputs), ("outputs", self.outputs)):
            for k, net in enumerate(nets):
                if scope == f"{prefix}[{k}]":
                    return run.forms[net]
        return None

    def kernel(self, run):
        n_in, n_out = len(self.inputs), len(self.outputs)
        # rt: next sample, last call's time, whether there was one, its inputs, held outputs,
        # then the input and output buffers the code is called with.
        size = 3 + n_in + n_out + max(n_in, 1) + max(n_out, 1)
        return K.K_CCODE, [self.ts if self.ts is not None else -1.0], [], [0.0] * size


#: Control library items and their block class; connector labels are handled by the netlist.
BLOCKS: dict[str, type[Block]] = {
    "Constant": Constant,
    "Step": Step,
    "Square Wave": SquareWave,
    "Triangular Wave": TriangularWave,
    "Sawtooth Wave": SawtoothWave,
    "Sine Wave": SineWave,
    "Piecewise Linear": PiecewiseLinear,
    "Gain": Gain,
    "Sum": Sum,
    "Product": Product,
    "Division": Division,
    "Limiter": Limiter,
    "Comparator": Comparator,
    "Not": Not,
    "Zero-Crossing Detector": ZeroCrossingDetector,
    "Zero Order Hold": ZeroOrderHold,
    "PID": PID,
    "Discrete PID": DiscretePID,
    "Discrete Transfer Function": DiscreteTransferFunction,
    "Average": Average,
    "Control Scope": ControlScope,
    "C Code": CCode,
}

#: Blocks whose output does not depend on their inputs at the same instant.
NO_FEEDTHROUGH = {
    "Average", "Comparator", "Not", "Zero-Crossing Detector", "Zero Order Hold", "Discrete PID",
    "Discrete Transfer Function", "C Code",
}


def has_sampling(params: dict[str, str]) -> bool:
    """True when a block's SamplingTime is a period (not none/auto/0)."""
    text = params.get("SamplingTime", "none")
    return not (is_none(text) or text.strip().lower() in ("auto", "0"))
