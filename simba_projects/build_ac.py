"""Build ``simba_projects/ac_client_server.jsimba``: the AC client/server study's SIMBA design.

Run ``python simba_projects/build_ac.py [OUT.jsimba]``. It draws with
``build.py``'s helpers (aesim.simba's license-free API, stable IDs, C Code
text written into the JSON), so a rebuild is byte-identical.

Design ``client_server`` (seeds 000/001, values of ``design/ac_client_server.yaml``):

- Two TWIST boards, each a full bridge of two legs (``S1``/``S2`` server,
  ``C1``/``C2`` client) of Ideal MOSFET with Diode on 40 V, each leg with its
  33 uH inductor (``Ls1``, ``Ls2``, ``Lc1``, ``Lc2``) and, after it, the leg's
  series losses as one resistor (``Rs1`` ... ``Rc2``: inductor DCR plus the
  conducting MOSFET's R_DS(on), the ideal switches have none). Both boards'
  leg-1 outputs and leg-2 outputs are joined; the 30 ohm ``R_load`` sits
  between them, and each joined output has the two boards' low-side
  capacitors in parallel to ground: the ceramics as ``C1_low``/``C2_low``,
  the electrolytics as ``C1_el``/``C2_el`` behind their series resistance
  ``R1_esr``/``R2_esr`` (initial voltages 20 V, the bridge's common mode at
  duty 0.5, so no common-mode ringing at start). Values from
  ``design/ac_client_server.yaml`` (``ac.plant``), read at build time.
  Each leg has its own ideal 40 V source, electrically the one shared supply.
- Leg 1 runs at duty d, leg 2 at 1 - d (TWIST's buck leg 1 and boost leg 2
  under one duty), so the bridge's mean differential voltage is (2d - 1) 40 V;
  d = 0.5 + u / (2 Udc) as the firmware computes it. 200 kHz carriers,
  delayed so that each 100 us tick falls ``current_sample_offset_s`` after
  the middle of leg 1's on-pulse, where the board's ADC reads the currents.
  The commands reach the modulators through ``pwm_S``, ``pwm_C``,
  ``pwm_ff_C`` (z^-1 at ``pwm_update_delay_s``, 5 us): the HRTIM applies a
  new duty at the next PWM period.
- ``pr_server``: C Code block (firmware PR, :func:`simbaflow.simulate.sil.pr_block_code`)
  on ``Vref`` (12 V, 50 Hz sine) minus ``V1_low - V2_low``.
- ``pr_client``: the same code on ``k_gain`` x server current minus client
  current, both measured on leg 1 (``iS1``, ``iC1``), plus the received
  ``Vref`` as feed-forward. What the server sends (k_gain i_s, Vref, w0) goes
  through unit delays ``link_iref``, ``link_vref``, ``link_w0`` (z^-1 at Ts):
  the frame the client uses at tick k is the one sent at tick k-1.
- Both blocks sample on one 10 kHz ``clock`` (the boards are synchronised).

Design ``client_server_kgain_step``: the same, the server current multiplied
by ``kgain_factor`` (Steps ``key_m`` + ``key_l``: 1, then 0.5 from 0.1 s, 1
again from 0.16 s, as the server's ``m`` then ``l`` keys) before ``k_gain``;
0.3 s long.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

from simbaflow.core.atomic import write_bytes
from simbaflow.simulate.sil import pr_block_code

HERE = Path(__file__).resolve().parent
#: Output file, next to this script.
PROJECT_PATH = HERE / "ac_client_server.jsimba"


def _load_dc_builder():
    # build.py is a script, not a package module: load it by path under a private name.
    spec = importlib.util.spec_from_file_location("simba_projects_build_dc", HERE / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_dc = _load_dc_builder()
_Sheet, _leg = _dc._Sheet, _dc._leg

#: Study values (design/ac_client_server.yaml); the PR gains are the committed ac_gains.h selection.
SPEC_PATH = HERE.parent / "design" / "ac_client_server.yaml"
TS = "100u"
UDC = "40"
F0 = "50"
W0 = "2 * pi * 50"
GAINS = {"server": ("0.02", "500", "0"), "client": ("0.3", "250", "0.0314159")}
K_GAIN = "1"
CARRIER = "200k"
CARRIER_HZ = 200e3


def _plant() -> dict:
    import yaml

    ac = yaml.safe_load(SPEC_PATH.read_text())["ac"]
    return {**ac["plant"], "pwm_update_delay_s": ac.get("pwm_update_delay_s", 0.0)}


PLANT = _plant()


def _num(value: float) -> str:
    """A SIMBA number: shortest text that reads back as the same float."""
    return repr(float(value))


#: Series resistance of one leg: inductor DCR, conducting MOSFET, wiring.
R_LEG = _num(PLANT.get("l_dcr_ohm", 0.0) + PLANT.get("rds_on_ohm", 0.0) + PLANT.get("r_leg_ohm", 0.0))
#: Two boards' low-side capacitors per output node: ceramics, electrolytics and their resistance.
C_CERAMIC = _num(2 * (PLANT["c_leg_f"] - PLANT.get("c_electrolytic_f", 0.0)))
C_ELECTROLYTIC = _num(2 * PLANT.get("c_electrolytic_f", 0.0))
R_ESR = _num(PLANT.get("esr_electrolytic_ohm", 0.0) / 2)


def carrier_phase_deg(carrier_hz: float) -> str:
    """PhaseShift delaying a carrier so each tick falls ``current_sample_offset_s`` after its valley."""
    # A positive shift advances the carrier; the valley must come -offset after the tick.
    return _num(360.0 * PLANT.get("current_sample_offset_s", 0.0) * carrier_hz)

#: Transient settings: 0.2 s (ten periods of 50 Hz: start-up and steady state),
#: variable step with 1 ns minimum, every point kept.
END_TIME = "0.2"
#: ``client_server_kgain_step``: k_gain x 0.5 at 0.1 s (``m``, after the
#: start-up has settled), back to k_gain at 0.16 s (``l``); 0.3 s long so
#: its last five periods are steady again.
KGAIN_STEP_S = ("0.1", "0.16")
KGAIN_STEP_FACTOR = "0.5"
END_TIMES = {"client_server_kgain_step": "0.3"}


def _board(sheet: _Sheet, x: int, y: int, tag: str) -> None:
    """One TWIST full bridge: legs ``<tag>1``/``<tag>2``, their inductors, a current probe on leg 1."""
    for index, leg_x in ((1, x), (2, x + 60)):
        suffix = f"{tag}{index}"
        _leg(sheet, leg_x, y, suffix, UDC)
        inductor = f"L{tag.lower()}{index}"
        scopes = ["Current"] if index == 1 else []
        resistor = f"R{tag.lower()}{index}"
        if index == 1:
            sheet.add("Current Probe", f"i{suffix}", leg_x + 24, y + 3, vflip=True)
            sheet.add("Inductor", inductor, leg_x + 32, y + 3, params={"Value": "33u", "Iinit": "0"}, scopes=scopes)
            sheet.add("Resistor", resistor, leg_x + 42, y + 3, params={"Value": R_LEG})
            sheet.wire(f"T{suffix}H.Source", f"i{suffix}.P")
            sheet.wire(f"i{suffix}.N", f"{inductor}.P")
        else:
            sheet.add("Inductor", inductor, leg_x + 26, y + 3, params={"Value": "33u", "Iinit": "0"}, scopes=scopes)
            sheet.add("Resistor", resistor, leg_x + 36, y + 3, params={"Value": R_LEG})
            sheet.wire(f"T{suffix}H.Source", f"{inductor}.P")
        sheet.wire(f"{inductor}.N", f"{resistor}.P")
        sheet.add("Ground", f"G{suffix}", leg_x - 5, y + 12)
        sheet.wire(f"DC{suffix}.N", f"G{suffix}.G", f"T{suffix}L.Source")


def _modulation(sheet: _Sheet, x: int, y: int, tag: str, feed_forward: bool) -> None:
    """d = 0.5 + (u [+ feed-forward]) / (2 Udc), limited 0..1; leg 1 at d, leg 2 at 1 - d."""
    n_inputs = 3 if feed_forward else 2
    gains = "[1 1 1]" if feed_forward else "[1 1]"
    sheet.add("Gain", f"half_{tag}", x, y, params={"Value": f"1 / (2 * {UDC})"})
    sheet.add("Constant", f"mid_{tag}", x, y + 8, params={"Value": "0.5"})
    summer = sheet.add("Sum", f"sum_{tag}", x + 10, y, params={"NumberOfInputs": str(n_inputs), "Gains": gains})
    summer.NumberOfInputs = n_inputs  # the pins follow the port count: set it before wiring
    sheet.wire(f"half_{tag}.Out", f"sum_{tag}.inputs[0]")
    sheet.wire(f"mid_{tag}.Out", f"sum_{tag}.inputs[1]")
    if feed_forward:
        sheet.add("Gain", f"ff_{tag}", x, y + 16, params={"Value": f"1 / (2 * {UDC})"})
        sheet.wire(f"ff_{tag}.Out", f"sum_{tag}.inputs[2]")
    duty = f"duty_{tag}"
    sheet.add("Limiter", duty, x + 20, y, params={"LowLimit": "0", "HighLimit": "1"}, scopes=["Out"])
    sheet.wire(f"sum_{tag}.Out", f"{duty}.In")
    # The carrier starts at its valley, there leg 1's on-pulse is centred;
    # its phase shift puts every 100 us tick where the board's ADC reads the
    # ripple (ac.plant.current_sample_offset_s from the pulse's middle).
    carrier = {"Amplitude": "1", "Frequency": CARRIER, "DutyCycle": "0.5", "Offset": "0",
               "PhaseShift": carrier_phase_deg(CARRIER_HZ)}
    sheet.add("Triangular Wave", f"TRI{tag}", x + 20, y + 10, params=carrier)
    sheet.add("Comparator", f"COMP{tag}1", x + 32, y)
    sheet.add("Comparator", f"COMP{tag}2", x + 32, y + 10)
    # Leg 2's upper switch conducts while the carrier is above d: duty 1 - d.
    sheet.wire(f"COMP{tag}1.In1", f"{duty}.Out", f"COMP{tag}2.In2")
    sheet.wire(f"COMP{tag}1.In2", f"TRI{tag}.Out", f"COMP{tag}2.In1")
    sheet.signal(f"gate_{tag}1", f"COMP{tag}1.Out", f"T{tag}1H.Gate", f"NOT{tag}1.In")
    sheet.signal(f"gate_{tag}2", f"COMP{tag}2.Out", f"T{tag}2H.Gate", f"NOT{tag}2.In")


def _pr_block(sheet: _Sheet, x: int, y: int, role: str, clock: tuple[str, str], error: tuple[str, str],
              w0: tuple[str, str]) -> None:
    """C Code block ``pr_<role>`` at ``(x + 50, y)``, its gain constants at ``x``, and its input labels.

    The block's inputs sit one grid step apart, too close for a label beside
    each, so each input's label stands on its pin's row in a staircase to
    the left (labels do not block wires; devices would). Every input comes
    by label: ``clock``, ``error`` and ``w0`` are ``(net, source pin)`` of
    nets driven elsewhere; the gain constants ``kp_<role>``... drive nets
    of their own names.
    """
    kp, kr, phi = GAINS[role]
    name = f"pr_{role}"
    constants = {2: (f"kp_{role}", kp), 3: (f"kr_{role}", kr), 5: (f"phi_{role}", phi), 6: (f"umax_{role}", UDC)}
    for row, (net, value) in enumerate(constants.values()):
        sheet.add("Constant", net, x, y + 8 * row, params={"Value": value})
        sheet.signal(net, f"{net}.Out")
    code = sheet.add("C Code", name, x + 56, y)
    code.NumberOfInputs = 7
    code.NumberOfOutputs = 1
    sheet.parameters[name] = {
        "NumberOfInputs": "7",
        "NumberOfOutputs": "1",
        "OptionalAdditionalIncludeDirectory": "",
        "Code": pr_block_code(),
    }
    nets = {0: clock, 1: error, 4: w0, **{j: (net, f"{net}.Out") for j, (net, _) in constants.items()}}
    for j in range(7):
        pin = sheet.pin(f"{name}.inputs[{j}]")
        # An output label's pin is 4 right and 1 below its origin.
        net, source = nets[j]
        label = sheet.circuit.AddDevice(_dc._OUTPUT_LABEL, pin.Position.X - 6 - 6 * j, pin.Position.Y - 1, 0)
        if label is None:
            raise RuntimeError(f"{sheet.name}: no room for the {net!r} label of {name}.inputs[{j}]")
        label.Name = net
        if sheet.circuit.AddConnection(label.Pins[0], pin) is None:
            raise RuntimeError(f"{sheet.name}: cannot wire the {net!r} label to {name}.inputs[{j}]")
        sheet.nets.append({source, f"{name}.inputs[{j}]"})


def _delay(sheet: _Sheet, name: str, x: int, y: int) -> None:
    sheet.add("Discrete Transfer Function", name, x, y,
              params={"Num": "[1]", "Den": "[1 0]", "SamplingTime": TS}, scopes=["Out"])


def _pwm_update(sheet: _Sheet, name: str, x: int, y: int) -> None:
    """z^-1 at ``pwm_update_delay_s``: a command written at a tick reaches the PWM that much later."""
    sheet.add("Discrete Transfer Function", name, x, y,
              params={"Num": "[1]", "Den": "[1 0]", "SamplingTime": _num(PLANT["pwm_update_delay_s"])}, scopes=["Out"])


def _kgain_keys(sheet: _Sheet, x: int, y: int) -> None:
    """The server's ``m`` then ``l`` keys: ``kgain_step`` = ``kgain_factor`` x its input ``In1``.

    ``kgain_factor`` is 1, then ``KGAIN_STEP_FACTOR`` from ``KGAIN_STEP_S[0]``,
    then 1 again from ``KGAIN_STEP_S[1]``: the sum of two Step sources.
    """
    (t_m, t_l), factor = KGAIN_STEP_S, KGAIN_STEP_FACTOR
    sheet.add("Step", "key_m", x, y, params={"InitialValue": "1", "FinalValue": factor, "StepTime": t_m})
    sheet.add("Step", "key_l", x, y + 10,
              params={"InitialValue": "0", "FinalValue": f"1 - {factor}", "StepTime": t_l})
    summer = sheet.add("Sum", "kgain_factor", x + 12, y, params={"NumberOfInputs": "2", "Gains": "[1 1]"},
                       scopes=["Out"])
    summer.NumberOfInputs = 2
    sheet.wire("key_m.Out", "kgain_factor.inputs[0]")
    sheet.wire("key_l.Out", "kgain_factor.inputs[1]")
    sheet.add("Product", "kgain_step", x + 24, y)
    # The Product's two inputs are too close for a label each: the factor comes by wire.
    sheet.wire("kgain_factor.Out", "kgain_step.In2")


def client_server(name: str = "client_server", kgain_step: bool = False) -> _Sheet:
    """Design ``name``; with ``kgain_step``, the server's k_gain is stepped as by its ``m`` then ``l`` keys."""
    sheet = _Sheet(name)
    _board(sheet, 0, 0, "S")
    _board(sheet, 0, 40, "C")
    # Both boards' leg-1 outputs together, leg-2 outputs together, the load between.
    # The two boards' low-side capacitors of a leg are in parallel: one
    # capacitor each (the embedded engine refuses capacitor loops).
    sheet.add("Resistor", "R_load", 130, 20, angle=90, params={"Value": "30"})
    for index, x in ((1, 120), (2, 150)):
        sheet.add("Capacitor", f"C{index}_low", x, 24, angle=90, params={"Value": C_CERAMIC, "Vinit": "20"})
        sheet.add("Ground", f"G{index}_low", x + 1, 32)
        sheet.wire(f"C{index}_low.N", f"G{index}_low.G")
        # The electrolytics behind their series resistance, to the same ground.
        sheet.add("Resistor", f"R{index}_esr", x + 8, 16, angle=90, params={"Value": R_ESR})
        sheet.add("Capacitor", f"C{index}_el", x + 8, 24, angle=90, params={"Value": C_ELECTROLYTIC, "Vinit": "20"})
        sheet.add("Ground", f"G{index}_el", x + 9, 32)
        sheet.wire(f"R{index}_esr.N", f"C{index}_el.P")
        sheet.wire(f"C{index}_el.N", f"G{index}_el.G")
        sheet.wire(f"C{index}_low.P", f"R{index}_esr.P")
    sheet.wire("Rs1.N", "Rc1.N")
    sheet.wire("Rs2.N", "Rc2.N", "R_load.N", "C2_low.P")
    sheet.wire("Rc1.N", "R_load.P", "C1_low.P")
    sheet.add("Voltage Probe", "V1_low", 140, 10)
    sheet.add("Voltage Probe", "V2_low", 140, 30)
    sheet.wire("R_load.P", "V1_low.P")
    sheet.wire("R_load.N", "V2_low.P")

    # Shared sampling clock: 10 kHz square wave through a zero-crossing detector.
    sheet.add("Square Wave", "clock", 0, 90,
              params={"Amplitude": "1", "Frequency": "10k", "DutyCycle": "0.5", "Offset": "-0.5", "PhaseShift": "0"})
    sheet.add("Zero-Crossing Detector", "ZCD1", 8, 90)
    sheet.wire("clock.Out", "ZCD1.In")
    sheet.signal("clk", "ZCD1.Out")
    sheet.add("Constant", "w0", 0, 100, params={"Value": W0})

    # Server: voltage loop on Vref - (V1_low - V2_low).
    sheet.add("Sine Wave", "Vref", 0, 120,
              params={"Amplitude": "12", "Frequency": F0, "Offset": "0", "PhaseShift": "0"}, scopes=["Out"])
    summer = sheet.add("Sum", "err_server", 20, 120, params={"NumberOfInputs": "3", "Gains": "[1 -1 1]"})
    summer.NumberOfInputs = 3
    # The load voltage V1_low - V2_low, for the scope.
    sheet.add("Sum", "v_load", 0, 240, params={"NumberOfInputs": "2", "Gains": "[1 -1]"}, scopes=["Out"])
    sheet.signal("v1", "V1_low.Out", "err_server.inputs[1]", "v_load.inputs[0]")
    sheet.signal("v2", "V2_low.Out", "err_server.inputs[2]", "v_load.inputs[1]")
    sheet.signal("v_load", "v_load.Out")
    sheet.signal("e_server", "err_server.Out")
    _pr_block(sheet, 30, 115, "server", ("clk", "ZCD1.Out"), ("e_server", "err_server.Out"), ("w0_tx", "w0.Out"))
    _modulation(sheet, 110, 115, "S", feed_forward=False)
    _pwm_update(sheet, "pwm_S", 100, 100)
    sheet.signal("u_server", "pr_server.outputs[0]", "pwm_S.In")
    sheet.signal("u_server_applied", "pwm_S.Out", "half_S.In")

    # The frame: k_gain i_s, Vref and w0, one control period late at the client.
    sheet.add("Gain", "k_gain", 0, 160, params={"Value": K_GAIN})
    if kgain_step:
        _kgain_keys(sheet, 0, 260)
        sheet.signal("i_server", "iS1.Out", "kgain_step.In1")
        sheet.signal("i_server_keyed", "kgain_step.Out", "k_gain.In")
    else:
        sheet.signal("i_server", "iS1.Out", "k_gain.In")
    _delay(sheet, "link_iref", 10, 160)
    _delay(sheet, "link_vref", 10, 170)
    _delay(sheet, "link_w0", 10, 180)
    sheet.wire("k_gain.Out", "link_iref.In")
    sheet.signal("vref", "Vref.Out", "err_server.inputs[0]", "link_vref.In")
    sheet.signal("w0_tx", "w0.Out", "link_w0.In")
    sheet.signal("w0_rx", "link_w0.Out")

    # Client: current loop on the received reference, received Vref fed forward.
    sheet.add("Sum", "err_client", 24, 160, params={"NumberOfInputs": "2", "Gains": "[1 -1]"})
    sheet.wire("link_iref.Out", "err_client.inputs[0]")
    sheet.signal("i_client", "iC1.Out", "err_client.inputs[1]")
    sheet.signal("e_client", "err_client.Out")
    _pr_block(sheet, 30, 195, "client", ("clk", "ZCD1.Out"), ("e_client", "err_client.Out"),
              ("w0_rx", "link_w0.Out"))
    _modulation(sheet, 110, 195, "C", feed_forward=True)
    _pwm_update(sheet, "pwm_C", 100, 180)
    _pwm_update(sheet, "pwm_ff_C", 100, 230)
    sheet.signal("u_client", "pr_client.outputs[0]", "pwm_C.In")
    sheet.signal("u_client_applied", "pwm_C.Out", "half_C.In")
    sheet.signal("vref_rx", "link_vref.Out", "pwm_ff_C.In")
    sheet.signal("vref_rx_applied", "pwm_ff_C.Out", "ff_C.In")
    return sheet


def client_server_kgain_step() -> _Sheet:
    """``client_server`` with the k_gain step of :func:`_kgain_keys`, for the step response."""
    return client_server("client_server_kgain_step", kgain_step=True)


#: The builders, in project order.
DESIGNS = (client_server, client_server_kgain_step)


def build_sheets() -> list[_Sheet]:
    """Draw every design (aesim objects plus the nets each is meant to have)."""
    return [make() for make in DESIGNS]


def project_text(sheets: list[_Sheet] | None = None) -> str:
    """The whole ``.jsimba`` text, deterministic for a given aesim.simba and firmware source."""
    sheets = build_sheets() if sheets is None else sheets
    designs = []
    for sheet in sheets:
        design = sheet.to_json()
        design["TransientAnalysis"]["EndTime"] = END_TIMES.get(sheet.name, END_TIME)
        designs.append(design)
    project = {"Designs": designs, "Libraries": [], "TestBenches": [], "ThermalData": []}
    return json.dumps(project, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    out = Path(argv[1]) if len(argv) > 1 else PROJECT_PATH
    write_bytes(out, project_text().encode("utf-8"))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
