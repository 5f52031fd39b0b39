"""roles/vllm: README table, defaults/main.yml and meta/argument_specs.yml say the same thing."""

import re
from pathlib import Path

import pytest
import yaml

ROLE = Path(__file__).resolve().parents[1] / "roles" / "vllm"


def _specs():
    return yaml.safe_load((ROLE / "meta" / "argument_specs.yml").read_text())["argument_specs"]


def _spec_names(options, prefix=""):
    names = {}
    for name, spec in options.items():
        names[prefix + name] = spec
        if spec.get("options"):
            names.update(_spec_names(spec["options"], f"{prefix}{name}[]."))
    return names


def test_render_entry_point_takes_the_same_options():
    specs = _specs()
    assert specs["render"]["options"] == specs["main"]["options"]


def test_defaults_file_matches_the_spec():
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    # The shared glassbox_* settings (glassbox_tls, ...) are declared in every consuming role's
    # spec; their defaults live in vars/main.yml (`| default(...)`), not in defaults/main.yml.
    options = {
        k: v for k, v in _specs()["main"]["options"].items() if not k.startswith("glassbox_")
    }
    assert set(defaults) == set(options)
    for name, value in defaults.items():
        assert options[name]["default"] == value, name


def test_per_model_defaults_match_the_spec():
    internal = yaml.safe_load((ROLE / "vars" / "main.yml").read_text())["__vllm_model_defaults"]
    nested = _specs()["main"]["options"]["vllm_models"]["options"]
    assert set(internal) == set(nested) - {"model"}
    for name, value in internal.items():
        assert nested[name]["default"] == value, name


REPO = ROLE.parents[1]
VLLM_DOCS = [
    REPO / "README.md",
    ROLE / "README.md",
    ROLE / "defaults" / "main.yml",
    ROLE / "meta" / "argument_specs.yml",
    ROLE / "tasks" / "gpu.yml",
    ROLE / "templates" / "compose.yaml.j2",
]


@pytest.mark.parametrize("path", VLLM_DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_no_unverified_cuda12_image_is_recommended(path):
    # the -cu129 build was reported failing at import (libnvrtc.so.13) and is untested here
    assert "cu129" not in path.read_text()


@pytest.mark.parametrize("path", VLLM_DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_no_doc_says_health_answers_before_the_model_is_loaded(path):
    # vllm/entrypoints/openai/api_server.py builds the engine before uvicorn serves anything
    text = " ".join(path.read_text().split())
    assert not re.search(r"/health[`]? answers (while|before)", text)


def test_driver_readme_knows_debian_has_open_modules():
    text = (REPO / "roles" / "nvidia_driver" / "README.md").read_text()
    assert "have only the proprietary modules" not in text
    assert "nvidia-open-kernel-dkms" in text
