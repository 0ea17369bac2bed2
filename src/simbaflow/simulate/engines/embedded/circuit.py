"""The electrical part of a design as a switched linear state-space model.

Inductor currents and capacitor voltages are the states. For one topology
(every switch and diode either conducting or blocking) the network is linear:
modified nodal analysis with the inductors as current sources and the
capacitors as voltage sources gives every node voltage and branch current as
an affine function of the states, hence ``dx/dt = A x + b``. Topologies are
solved once per run and cached.

Ideal switches conduct through their on-resistance (at least :data:`R_ON_MIN_OHM`
so a parameter of 0 stays solvable) and block through :data:`R_OFF_OHM`; the
leakage is far below any current a converter study looks at.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from simbaflow.core.errors import SpecError

#: Smallest on-resistance used for a switch or diode whose parameter is 0.
R_ON_MIN_OHM = 1e-6
#: Resistance of a blocking switch or diode.
R_OFF_OHM = 1e6
#: Conductance from every node to ground, as in SPICE, when a node would float.
G_MIN_S = 1e-12


@dataclass
class Element:
    """One two-terminal electrical element between nets ``p`` and ``n``.

    ``kind`` is "R", "L", "C", "V" (voltage source), "I" (current source
    pushing ``value`` out of ``p`` into the circuit), "A" (ammeter, a 0 V source)
    or "S" (switch). A switch conducts through its channel (``value`` ohms, when
    ``gated`` and the gate is on) or through its diode (``rd`` ohms and forward
    voltage ``vf``; ``diode`` is +1 for a diode from p to n, -1 for a body diode
    from n to p, 0 for none).
    """

    kind: str
    device: str
    p: int
    n: int
    value: float = 0.0
    initial: float = 0.0
    vf: float = 0.0
    rd: float = 0.0
    diode: int = 0
    gated: bool = False


@dataclass
class Topology:
    """The linear model of one switch configuration.

    ``y = y_x @ x + y_0`` gives node voltages (ground excluded) then branch
    currents; ``dx/dt = a @ x + b``.
    """

    a: np.ndarray
    b: np.ndarray
    y_x: np.ndarray
    y_0: np.ndarray


@dataclass
class Circuit:
    """Elements on numbered nets (net ``ground`` is the reference)."""

    elements: list[Element]
    n_nets: int
    ground: int
    states: list[int] = field(default_factory=list)  # element index of each state
    switches: list[int] = field(default_factory=list)  # element index of each switch
    branches: dict[int, int] = field(default_factory=dict)  # element index -> branch number
    node_of_net: dict[int, int] = field(default_factory=dict)


def build_circuit(elements: list[Element], n_nets: int, ground: int | None) -> Circuit:
    """Index states, switches, branches and nodes of ``elements``.

    Raises
    ------
    SpecError
        When the circuit has elements but no Ground.
    """
    if ground is None:
        if elements:
            names = ", ".join(sorted({e.device for e in elements}))
            raise SpecError(f"the circuit ({names}) has no Ground device; add one so node voltages are defined")
        ground = -1
    circuit = Circuit(elements=elements, n_nets=n_nets, ground=ground)
    nets = sorted({e.p for e in elements} | {e.n for e in elements} - {ground})
    circuit.node_of_net = {net: k for k, net in enumerate(nets)}
    for index, element in enumerate(elements):
        if element.kind in ("L", "C"):
            circuit.states.append(index)
        if element.kind == "S":
            circuit.switches.append(index)
        if element.kind in ("C", "V", "A"):
            circuit.branches[index] = len(circuit.branches)
    return circuit


def initial_state(circuit: Circuit) -> np.ndarray:
    """Inductor currents and capacitor voltages at t = 0."""
    return np.array([circuit.elements[i].initial for i in circuit.states], dtype=float)


#: Conduction codes of a switch.
OFF, CHANNEL, DIODE = 0, 1, 2


def switch_path(element: Element, code: int) -> tuple[float, float] | None:
    """Conductance and offset voltage ``(g, v0)`` with ``i_pn = g (v_pn - v0)``, None when blocking."""
    if code == CHANNEL:
        return 1.0 / max(element.value, R_ON_MIN_OHM), 0.0
    if code == DIODE:
        return 1.0 / max(element.rd, R_ON_MIN_OHM), element.diode * element.vf
    return None


def solve_topology(circuit: Circuit, conducting: tuple[int, ...]) -> Topology:
    """Modified nodal analysis of ``circuit`` with switch ``k`` in conduction code ``conducting[k]``."""
    n_nodes = len(circuit.node_of_net)
    size = n_nodes + len(circuit.branches)
    n_x = len(circuit.states)
    g = np.zeros((size, size))
    rhs_x = np.zeros((size, n_x))
    rhs_0 = np.zeros(size)
    node = circuit.node_of_net
    state_of = {element: k for k, element in enumerate(circuit.states)}
    on = dict(zip(circuit.switches, conducting))

    def stamp_conductance(p: int, n: int, value: float) -> None:
        i, j = node.get(p), node.get(n)
        if i is not None:
            g[i, i] += value
        if j is not None:
            g[j, j] += value
        if i is not None and j is not None:
            g[i, j] -= value
            g[j, i] -= value

    def inject(net: int, column: np.ndarray | None, value: float, row: np.ndarray) -> None:
        k = node.get(net)
        if k is None:
            return
        if column is None:
            row[k] += value
        else:
            column[k] += value

    for index, e in enumerate(circuit.elements):
        if e.kind == "R":
            stamp_conductance(e.p, e.n, 1.0 / e.value)
        elif e.kind == "S":
            path = switch_path(e, on[index])
            if path is not None:
                conductance, offset = path
                stamp_conductance(e.p, e.n, conductance)
                # Forward voltage as a Norton source: i = g (v_pn - v0).
                inject(e.p, None, conductance * offset, rhs_0)
                inject(e.n, None, -conductance * offset, rhs_0)
            else:
                stamp_conductance(e.p, e.n, 1.0 / R_OFF_OHM)
        elif e.kind == "L":
            column = rhs_x[:, state_of[index]]
            inject(e.p, column, -1.0, rhs_0)
            inject(e.n, column, 1.0, rhs_0)
        elif e.kind == "I":
            inject(e.p, None, e.value, rhs_0)
            inject(e.n, None, -e.value, rhs_0)
        elif e.kind in ("C", "V", "A"):
            b = n_nodes + circuit.branches[index]
            i, j = node.get(e.p), node.get(e.n)
            if i is not None:
                g[i, b] += 1.0
                g[b, i] += 1.0
            if j is not None:
                g[j, b] -= 1.0
                g[b, j] -= 1.0
            if e.kind == "C":
                rhs_x[b, state_of[index]] = 1.0
            elif e.kind == "V":
                rhs_0[b] = e.value
    if size and np.linalg.cond(g) > 1e14:
        # A node without a resistive path (between inductors only): tie it to ground
        # as SPICE does. Only then, so that leakage paths stay exactly those of the
        # switches and diode commutation stays consistent.
        g[np.arange(n_nodes), np.arange(n_nodes)] += G_MIN_S
    try:
        y_x = np.linalg.solve(g, rhs_x) if n_x else np.zeros((size, 0))
        y_0 = np.linalg.solve(g, rhs_0)
    except np.linalg.LinAlgError:
        names = ", ".join(sorted({e.device for e in circuit.elements if e.kind in ("V", "C", "A")}))
        raise SpecError(
            f"the circuit cannot be solved: a loop of voltage sources, capacitors or current probes ({names}) "
            "fixes the same voltage twice"
        ) from None
    # Round-off below this is noise (a source-fixed node gets 1e-17 V/A of "dependence"
    # on an inductor current), and would make a constant look time-varying.
    if y_x.size:
        y_x[np.abs(y_x) < 1e-13 * np.abs(y_x).max()] = 0.0
    a = np.zeros((n_x, n_x))
    b = np.zeros(n_x)
    for k, index in enumerate(circuit.states):
        e = circuit.elements[index]
        if e.kind == "L":
            row_x, row_0 = _voltage(circuit, y_x, y_0, e.p, e.n)
        else:
            bnum = n_nodes + circuit.branches[index]
            row_x, row_0 = y_x[bnum], y_0[bnum]
        a[k] = row_x / e.value
        b[k] = row_0 / e.value
    return Topology(a=a, b=b, y_x=y_x, y_0=y_0)


def _voltage(circuit: Circuit, y_x: np.ndarray, y_0: np.ndarray, p: int, n: int) -> tuple[np.ndarray, float]:
    row_x = np.zeros(y_x.shape[1])
    row_0 = 0.0
    i, j = circuit.node_of_net.get(p), circuit.node_of_net.get(n)
    if i is not None:
        row_x = row_x + y_x[i]
        row_0 += y_0[i]
    if j is not None:
        row_x = row_x - y_x[j]
        row_0 -= y_0[j]
    return row_x, row_0


def net_voltage(circuit: Circuit, topology: Topology, net: int) -> tuple[np.ndarray, float]:
    """Voltage of ``net`` to ground as ``(row over states, constant)``."""
    return _voltage(circuit, topology.y_x, topology.y_0, net, circuit.ground)


def element_voltage(circuit: Circuit, topology: Topology, index: int) -> tuple[np.ndarray, float]:
    """Voltage from ``p`` to ``n`` of element ``index`` as ``(row over states, constant)``."""
    e = circuit.elements[index]
    return _voltage(circuit, topology.y_x, topology.y_0, e.p, e.n)


def element_current(
    circuit: Circuit, topology: Topology, index: int, conducting: int = OFF
) -> tuple[np.ndarray, float]:
    """Current from ``p`` to ``n`` through element ``index`` as ``(row over states, constant)``.

    ``conducting`` is the switch's conduction code in ``topology`` (switches only).
    """
    e = circuit.elements[index]
    n_x = len(circuit.states)
    if e.kind == "L":
        row = np.zeros(n_x)
        row[circuit.states.index(index)] = 1.0
        return row, 0.0
    if e.kind in ("C", "V", "A"):
        b = len(circuit.node_of_net) + circuit.branches[index]
        return topology.y_x[b].copy(), float(topology.y_0[b])
    if e.kind == "I":
        # value is pushed out of p into the circuit, i.e. it flows n -> p inside.
        return np.zeros(n_x), -e.value
    row_x, row_0 = element_voltage(circuit, topology, index)
    if e.kind == "R":
        return row_x / e.value, row_0 / e.value
    path = switch_path(e, conducting)
    if path is not None:
        conductance, offset = path
        return row_x * conductance, (row_0 - offset) * conductance
    return row_x / R_OFF_OHM, row_0 / R_OFF_OHM
