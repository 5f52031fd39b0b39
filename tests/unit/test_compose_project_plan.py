"""compose_project's plan and stamp (plugins/filter/compose_project.py) on probe readings built
here: a converged project plans nothing, each kind of drift plans exactly its fix."""

from __future__ import annotations

import hashlib

import pytest

from tests.unit import load_plugin

compose = load_plugin("plugins/filter/compose_project.py")
glassbox = load_plugin("plugins/filter/glassbox.py")

D = "/opt/glassbox/demo"
ENV = "TOKEN=s3cret\n"
COMPOSE = "services:\n  app:\n    image: demo:1\n"
FILES = [
    {"src": "/t/app.env.j2", "dest": "env/app.env", "mode": "0600", "secret": True},
    {"src": "/t/compose.yaml.j2", "dest": "compose.yaml", "mode": "0640"},
]
RENDERS = [ENV, COMPOSE]
SPEC = {
    "name": "demo",
    "dir": D,
    "dir_mode": "0750",
    "compose_file": "compose.yaml",
    "files": FILES,
    "absent_files": ["env/old.env"],
    "volumes": ["data", "cache"],
    "state": "configured",
    "purge": False,
}


def sha1(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()  # noqa: S324 - what sha1sum prints


def probe(**drift: str) -> str:
    """The probe's lines for a converged project; `drift` replaces or (value "") drops lines by
    key (dir, env_dir, env, compose, stamp, old, data, cache, version)."""
    lines = {
        "dir": f"path {D}|directory|750|root|root",
        "env_dir": f"path {D}/env|directory|700|root|root",
        "env": f"path {D}/env/app.env|regular file|600|root|root",
        "env_sha1": f"sha1 {sha1(ENV)}  {D}/env/app.env",
        "compose": f"path {D}/compose.yaml|regular file|640|root|root",
        "compose_sha1": f"sha1 {sha1(COMPOSE)}  {D}/compose.yaml",
        "version": "compose 0|2.40.3",
        "data": "volume demo_data",
        "cache": "volume demo_cache",
    }
    converged = "\n".join(lines.values()) + "\n"
    lines.update(drift)
    text = "\n".join(v for v in lines.values() if v) + "\n"
    # the stamp the converged project was validated with (what .compose-validated holds)
    if "stamp" not in drift:
        stamp = compose.stamp(glassbox.host_probe(converged), SPEC)
        text += f"path {D}/.compose-validated|regular file|600|root|root\n"
        text += f"sha1 {sha1(stamp)}  {D}/.compose-validated\n"
    return text


def plan(text: str, **kwargs) -> dict:
    spec = {**SPEC, **kwargs.pop("spec", {})}
    return compose.plan(glassbox.host_probe(text), spec, kwargs.pop("renders", RENDERS), **kwargs)


def test_a_converged_project_plans_nothing():
    out = plan(probe())
    assert out["any"] is False
    assert out == {
        "absent": False,
        "dir": False,
        "subdirs": [],
        "secret_files": [],
        "other_files": [],
        "remove": [],
        "validate": False,
        "volumes": [],
        "start": False,
        "first_check_run": False,
        "any": False,
    }


def test_started_always_starts():
    # pull, up and the readiness probes are Docker's to judge: they run on every started run
    out = plan(probe(), spec={"state": "started"})
    assert out["start"] is True
    assert out["any"] is True


@pytest.mark.parametrize(
    ("drift", "key", "expected"),
    [
        ({"dir": f"path {D}|directory|755|root|root"}, "dir", True),
        ({"dir": ""}, "dir", True),
        ({"env_dir": f"path {D}/env|directory|755|root|root"}, "subdirs", ["env"]),
        ({"env_dir": f"path {D}/env|directory|700|root|staff"}, "subdirs", ["env"]),
        ({"env": f"path {D}/env/app.env|regular file|644|root|root"}, "secret_files", [FILES[0]]),
        ({"env_sha1": f"sha1 {sha1('TOKEN=old')}  {D}/env/app.env"}, "secret_files", [FILES[0]]),
        ({"compose_sha1": ""}, "other_files", [FILES[1]]),
        ({"old": f"path {D}/env/old.env|regular file|600|root|root"}, "remove", ["env/old.env"]),
        ({"cache": ""}, "volumes", ["cache"]),
        ({"data": "", "cache": ""}, "volumes", ["data", "cache"]),
        ({"stamp": ""}, "validate", True),
        ({"version": "compose 0|2.41.0"}, "validate", True),
    ],
)
def test_each_drift_plans_exactly_its_fix(drift, key, expected):
    out = plan(probe(**drift))
    assert out[key] == expected
    assert out["any"] is True
    untouched = {"dir": False, "subdirs": [], "secret_files": [], "other_files": []}
    untouched |= {"remove": [], "volumes": [], "validate": False}
    # a content drift also changes what the stamp records: validate goes with the render
    rendered = key in ("secret_files", "other_files")
    also = {"validate"} if rendered and "sha1" in str(drift) else set()
    for other, value in untouched.items():
        if other not in {key, *also}:
            assert out[other] == value, other


def test_a_changed_render_is_planned_and_validated():
    out = plan(probe(), renders=[ENV, COMPOSE.replace("demo:1", "demo:2")])
    assert out["other_files"] == [FILES[1]]
    assert out["secret_files"] == []
    assert out["any"] is True


def test_the_render_entry_point_plans_no_docker_work():
    out = plan(probe(data="", cache="", stamp=""), docker=False, spec={"state": "started"})
    assert out["volumes"] == []
    assert out["validate"] is False
    assert out["start"] is False
    assert out["any"] is False


def test_a_first_check_run_neither_validates_nor_creates_volumes():
    bare = "compose 1|docker: 'compose' is not a docker command.\n"
    out = plan(bare, check_mode=True)
    assert out["first_check_run"] is True
    assert out["dir"] is True
    assert out["secret_files"] == [FILES[0]]
    assert out["validate"] is False
    assert out["volumes"] == []
    # on a host that has the project, check mode plans as a real run does
    assert plan(probe(cache=""), check_mode=True)["volumes"] == ["cache"]
    assert plan(probe(cache=""), check_mode=True)["first_check_run"] is False


def test_absent_acts_only_on_a_project_that_is_there_or_when_purging():
    gone = plan("", spec={"state": "absent"}, renders=[])
    assert gone == {"absent": True, "compose_file_found": False, "any": False}
    assert plan("", spec={"state": "absent", "purge": True}, renders=[])["any"] is True
    there = plan(probe(), spec={"state": "absent"}, renders=[])
    assert there == {"absent": True, "compose_file_found": True, "any": True}
    no_compose_file = plan(probe(compose=""), spec={"state": "absent"}, renders=[])
    assert no_compose_file["compose_file_found"] is False
    assert no_compose_file["any"] is True


def test_renders_must_match_the_files():
    with pytest.raises(ValueError, match="2 files in the spec but 1 renders"):
        plan(probe(), renders=[ENV])


def test_subdirs_are_unique_and_in_order():
    files = [{"dest": "env/a.env"}, {"dest": "compose.yaml"}, {"dest": "env/b.env"}]
    assert compose.subdirs([*files, {"dest": "conf/x/y.conf"}]) == ["env", "conf/x"]


def test_the_stamp_records_compose_the_project_and_every_render():
    now = glassbox.host_probe(probe())
    text = (
        "compose 0|2.40.3\n"
        "project demo file compose.yaml\n"
        f"{sha1(ENV)}  env/app.env\n"
        f"{sha1(COMPOSE)}  compose.yaml\n"
    )
    assert compose.stamp(now, SPEC) == sha1(text) + "\n"


def test_the_stamp_takes_a_written_render_from_the_module_result():
    now = glassbox.host_probe(probe())
    written = [
        {"changed": True, "item": FILES[1], "checksum": "f" * 40},
        {"changed": False, "item": FILES[0], "checksum": "e" * 40},
    ]
    text = (
        "compose 0|2.40.3\n"
        "project demo file compose.yaml\n"
        f"{sha1(ENV)}  env/app.env\n"
        f"{'f' * 40}  compose.yaml\n"
    )
    assert compose.stamp(now, SPEC, written) == sha1(text) + "\n"
    # check mode: the module reports no checksum; any value other than the old one will do
    check = [{"changed": True, "item": FILES[1]}]
    text = text.replace(f"{'f' * 40}  compose.yaml", "written  compose.yaml")
    assert compose.stamp(now, SPEC, check) == sha1(text) + "\n"
    assert compose.unvalidated(now, SPEC, check) is True


def test_unvalidated_compares_the_stamp_on_the_host():
    now = glassbox.host_probe(probe())
    assert compose.unvalidated(now, SPEC) is False
    assert compose.unvalidated(now, {**SPEC, "name": "other"}) is True
    assert compose.unvalidated(glassbox.host_probe(probe(stamp="")), SPEC) is True
