"""The pip files and environment.yml must list the same pins."""

import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def _pins(lines):
    return {l.split("==")[0].lower(): l for l in (x.strip() for x in lines) if l and not l.startswith("#")}


def test_environment_yml_agrees_with_requirements():
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    assert "python=3.11" in env["dependencies"]
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert _pins(pip_section) == _pins((REPO / "requirements.txt").read_text().splitlines())
    post_in_yml = re.findall(r"^#\s+-\s+(\S+==\S+)", (REPO / "environment.yml").read_text(), re.M)
    assert _pins(post_in_yml) == _pins((REPO / "requirements-post.txt").read_text().splitlines())


def test_every_requirement_is_pinned():
    for f in ("requirements.txt", "requirements-post.txt"):
        for line in (REPO / f).read_text().splitlines():
            if line.strip() and not line.startswith("#"):
                assert re.fullmatch(r"[A-Za-z0-9_.\-]+==[0-9][0-9A-Za-z.+]*", line.strip()), (f, line)


def test_key_pins_from_the_issue():
    pins = _pins((REPO / "requirements.txt").read_text().splitlines())
    pins |= _pins((REPO / "requirements-post.txt").read_text().splitlines())
    assert pins["torch"] == "torch==2.14.1" and pins["torchvision"] == "torchvision==0.29.1"
    assert pins["mmcv-lite"] == "mmcv-lite==2.1.0" and pins["mmdet"] == "mmdet==3.2.0"
    assert int(pins["setuptools"].split("==")[1].split(".")[0]) < 81


def test_installed_versions_match_pins():
    from importlib.metadata import version

    pins = _pins((REPO / "requirements.txt").read_text().splitlines())
    pins |= _pins((REPO / "requirements-post.txt").read_text().splitlines())
    for name, line in pins.items():
        installed = version(name).split("+")[0]
        assert installed == line.split("==")[1], (name, installed)
