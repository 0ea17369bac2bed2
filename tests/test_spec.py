"""Study specs: defaults, and one clear message per kind of mistake, with no partial results."""

import copy

import pytest
import yaml

from cli_helpers import run_cli
from simbaflow.core.errors import SpecError
from simbaflow.core.spec import load_spec, validate_spec

GOOD = {
    "study": "t",
    "plant": {"model": "voltage_compensated_inductor", "l_h": 6e-3, "r_ohm": 30, "e_v": 600},
    "sweep": {"xi": [0.7, 1.4], "wn_rad_s": [5000], "fs_hz": [16000], "method": ["tustin"]},
}


def test_defaults_filled():
    spec = validate_spec(copy.deepcopy(GOOD))
    assert spec["fixed_point"] == {"word_bits": 32, "frac_bits": 16}
    assert spec["sweep"]["delay_samples"] == [0]
    assert spec["sweep"]["realisation"] == ["pi_recurrence"]
    assert spec["selection"]["objective"] == {"minimize": "settling_time_s"}
    assert spec["controller"] == {"output_min": 0, "output_max": 1}


def test_default_study_is_valid(repo):
    spec = load_spec(repo / "design/dc_current_loop.yaml")
    assert spec["sweep"]["xi"] == [0.7, 0.9, 1.1, 1.4, 1.6]
    assert spec["plant_variations"] == {"l_h": {"pct": 20}, "e_v": {"pct": 10}, "samples": 8, "seed": 0}
    assert len(spec["_sha256"]) == 64


def _mutate(path, value):
    spec = copy.deepcopy(GOOD)
    node = spec
    for key in path[:-1]:
        node = node[key]
    if value is KeyError:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return spec


BAD = [
    (("plant", "l_h"), KeyError, r"plant: 'l_h' is required but missing"),
    (("plant", "e_v"), "600V", r"plant\.e_v: '600V' is not of type number"),
    (("plant", "l_h"), -6e-3, r"plant\.l_h: -0\.006 must be > 0"),
    (("sweep", "method"), ["tustin", "bilinearish"], r"sweep\.method\[1\]: 'bilinearish' is not one of tustin"),
    (("sweep", "xi"), [], r"sweep\.xi: must list at least one value \(empty sweep\)"),
    (("sweep", "xi"), [0.7, 0.0], r"sweep\.xi\[1\]: 0\.0 must be > 0"),
    (("sweep", "xi"), [-1], r"sweep\.xi\[0\]: -1 must be > 0"),
    (("sweep", "wn_rad_s"), KeyError, r"sweep\.wn_rad_s: is required"),
    (("plant", "inductance"), 1.0, r"plant: unknown key 'inductance'"),
]


@pytest.mark.parametrize("path, value, message", BAD)
def test_bad_spec_messages(path, value, message):
    with pytest.raises(SpecError, match=message):
        validate_spec(_mutate(path, value), "my.yaml")


@pytest.mark.parametrize("path, value, message", BAD[:6])
def test_bad_spec_cli_exit_and_nothing_written(tmp_path, path, value, message):
    spec_file = tmp_path / "bad.yaml"
    spec_file.write_text(yaml.safe_dump(_mutate(path, value)))
    res = run_cli("sweep", str(spec_file), cwd=tmp_path)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"simbaflow: {spec_file}: "), res.stderr
    assert "Traceback" not in res.stderr
    assert not (tmp_path / "results").exists()


def test_invalid_yaml_names_line(tmp_path):
    f = tmp_path / "broken.yaml"
    f.write_text("study: x\nplant: {model: [unclosed\n")
    with pytest.raises(SpecError, match=r"broken\.yaml: line \d+ is not valid YAML"):
        load_spec(f)


def test_missing_file():
    with pytest.raises(SpecError, match="no such study spec file"):
        load_spec("does/not/exist.yaml")


def test_gain_grid_alternative_and_mixing_refused():
    spec = copy.deepcopy(GOOD)
    del spec["sweep"]["xi"], spec["sweep"]["wn_rad_s"]
    spec["sweep"].update(kp=[0.1, 0.14], ki=[250])
    assert validate_spec(spec)["sweep"]["kp"] == [0.1, 0.14]
    spec["sweep"]["xi"] = [1.0]
    with pytest.raises(SpecError, match="either xi and wn_rad_s, or kp and ki"):
        validate_spec(spec)
