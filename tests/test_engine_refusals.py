"""The embedded engine refuses broken circuits instead of reporting them ok (issue 12, defect 12)."""

import copy

import pytest

from cli_helpers import REPO, run_cli
from embedded_designs import design, device
from simbaflow import compile_design, get_design, load_project
from simbaflow.core.errors import SimbaflowError, SpecError

PROJECT = REPO / "simba_projects" / "dc_current_loop.jsimba"


@pytest.mark.parametrize("value", ["1e999", "-1e999", "inf*0"])
def test_a_non_finite_parameter_given_with_set_is_refused(tmp_path, value):
    res = run_cli("simulate", str(PROJECT), "--design", "continuous_pi", "--engine", "embedded",
                  "--set", f"L1.Value={value}", "--end-time", "0.001", "--out", "run.parquet", cwd=tmp_path)
    assert res.returncode == 2, res.stderr
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("simbaflow: device 'L1' parameter 'Value': value") and "finite number" in last
    assert not (tmp_path / "run.parquet").exists()


def test_a_non_finite_parameter_in_the_file_is_refused():
    broken = copy.deepcopy(get_design(load_project(PROJECT), "continuous_pi"))
    inductor = next(d for d in broken["Circuit"]["Devices"] if d["Name"] == "L1")
    inductor["Parameters"]["Value"] = "1e999"
    with pytest.raises(SpecError, match=r"device 'L1' parameter 'Value'.*evaluates to inf"):
        compile_design(broken).run(end_time_s=1e-3)


def test_inf_still_means_no_limit():
    # The seed's PI block stores its absent output limits as inf and -inf (simba_projects/ is built so).
    pid = next(d for d in get_design(load_project(PROJECT), "continuous_pi")["Circuit"]["Devices"] if d["Name"] == "PI")
    assert (pid["Parameters"]["Umax"], pid["Parameters"]["Umin"]) == ("inf", "-inf")
    compile_design(get_design(load_project(PROJECT), "continuous_pi")).run(end_time_s=1e-3)


def test_a_removed_wire_is_refused_with_the_open_pin_named():
    broken = copy.deepcopy(get_design(load_project(PROJECT), "continuous_pi"))
    del broken["Circuit"]["Connectors"][3]  # the wire into the current probe's N pin
    with pytest.raises(SpecError, match=r"design 'continuous_pi': pin N of 'iL' is connected to no other "
                                        r"electrical pin"):
        compile_design(broken)


def test_a_signal_that_becomes_non_finite_fails_the_run_naming_it():
    # 1e200 x 1e200 overflows a double: the product is infinite from the first instant.
    devices = [device("Constant", "A", 0, 0, Value="1e200"), device("Constant", "B", 0, 10, Value="1e200"),
               device("Product", "P", 10, 0), device("Control Scope", "SC", 20, 0)]
    wires = [("A.Out", "P.In1"), ("B.Out", "P.In2"), ("P.Out", "SC.In")]
    with pytest.raises(SimbaflowError, match=r"signal 'SC - Value' is not finite from t = 0 s"):
        compile_design(design(devices, wires, 1e-3, ["SC - Value"])).run()
