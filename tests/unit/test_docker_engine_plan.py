"""docker_engine's decisions (roles/docker_engine/filter_plugins/docker_engine.py): milliseconds."""

from __future__ import annotations

import pytest

from tests.unit import load_plugin

engine = load_plugin("roles/docker_engine/filter_plugins/docker_engine.py")
glassbox = load_plugin("plugins/filter/glassbox.py")

CONVERGED_PROBE = "\n".join(
    [
        "pkg ii |docker.io|26.1.5+dfsg1-9+deb13u1",
        "pkg ii |docker-cli|26.1.5+dfsg1-9+deb13u1",
        "pkg ii |docker-compose|2.26.1-4",
        "pkg ii |docker-buildx|0.13.1+ds1-3",
        "pkg ii |python3-requests|2.32.3+dfsg-5",
        "pkg un |docker-ce|",
        "path /etc/docker|directory|755|root|root",
        "path /etc/docker/daemon.json|regular file|644|root|root",
        "sha1 0123456789abcdef0123456789abcdef01234567  /etc/docker/daemon.json",
        "unit active|enabled",
        "compose 0|2.26.1-4",
        "value docker_members|ops,ci",
    ]
)
WANTED = {
    "conflicts": ["docker-ce", "docker-ce-cli", "containerd.io"],
    "packages": ["docker.io", "docker-cli", "docker-compose", "docker-buildx", "python3-requests"],
    "dir": False,
    "daemon_json": False,
    "compose_min": "2.18.0",
    "users": ["ops"],
}


def now(text: str = CONVERGED_PROBE) -> dict:
    return glassbox.host_probe(text)


def test_converged_host_has_nothing_to_do():
    assert engine.todo(now(), WANTED) == []


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("pkg un |docker-ce|", "pkg ii |docker-ce|5:28.5.2-1~debian.13~trixie", ["remove"]),
        # dpkg remembers a removed package's config files: not present
        ("pkg un |docker-ce|", "pkg rc |docker-ce|5:28.5.2-1", []),
        ("pkg ii |docker-compose|2.26.1-4", "pkg un |docker-compose|", ["install"]),
        ("pkg ii |docker-cli|", "pkg iU |docker-cli|", ["install"]),
        ("unit active|enabled", "unit inactive|enabled", ["service"]),
        ("unit active|enabled", "unit active|disabled", ["service"]),
        ("compose 0|2.26.1-4", "compose 0|2.17.3", ["compose"]),
        ("compose 0|2.26.1-4", "compose 1|docker: 'compose' is not a docker command.", ["compose"]),
        ("value docker_members|ops,ci", "value docker_members|ci", ["users"]),
        ("value docker_members|ops,ci", "value docker_members|", ["users"]),
    ],
)
def test_each_difference_is_named(old, new, expected):
    assert old in CONVERGED_PROBE
    assert engine.todo(now(CONVERGED_PROBE.replace(old, new)), WANTED) == expected


def test_a_pinned_version_must_match_dpkgs_string():
    wanted = dict(WANTED, packages=["docker.io=26.1.5+dfsg1-9+deb13u2"])
    assert engine.todo(now(), wanted) == ["install"]
    wanted = dict(WANTED, packages=["docker.io=26.1.5+dfsg1-9+deb13u1"])
    assert engine.todo(now(), wanted) == []


def test_the_file_decisions_come_from_the_caller():
    assert engine.todo(now(), dict(WANTED, dir=True, daemon_json=True)) == ["dir", "daemon_json"]


def test_nothing_read_means_everything_but_the_files_differs():
    assert engine.todo(now(""), WANTED) == ["install", "service", "compose", "users"]


@pytest.mark.parametrize(
    ("stdout", "rc", "accepted"),
    [
        ("5.0.2", 0, True),
        ("v5.1.0", 0, True),
        ("2.18.0", 0, True),
        ("2.26.1-4", 0, True),
        ("2.17.3", 0, False),
        ("dev", 0, False),
        ("2.40.3", 1, False),
    ],
)
def test_compose_version_is_compared(stdout, rc, accepted):
    problem = engine.compose_problem({"rc": rc, "stdout": stdout, "stderr": ""}, "2.18.0")
    assert (problem == "") == accepted
    if not accepted:
        assert "Compose 2.18.0 or newer" in problem
        assert f"rc={rc}: {stdout}." in problem


def test_no_answer_is_a_problem():
    assert "rc=1: ." in engine.compose_problem({}, "2.18.0")


# A public address for daemon.json's `ip` (documentation range, RFC 5737).
PUBLIC = "192.0.2.10"
SETTINGS = {
    "source": "distribution",
    "distribution_packages": ["docker.io"],
    "os": "Debian 13.1",
    "users": ["ops"],
    "known_users": {"ops": ["x"], "root": ["x"]},
    "tls": True,
    "daemon_options": {},
}


def test_good_settings_have_no_problem():
    assert engine.problems(SETTINGS) == []
    assert engine.problems(dict(SETTINGS, tls=False, daemon_options={"ip": PUBLIC})) == []
    assert engine.problems(dict(SETTINGS, daemon_options={"ip": "127.0.0.1"})) == []


def test_each_problem_has_its_message():
    assert engine.problems(dict(SETTINGS, distribution_packages=[], os="Debian 12.9")) == [
        "docker_engine_source=distribution is not possible on Debian 12.9: its packages have no"
        " Compose v2. Use docker_engine_source: docker (or auto)."
    ]
    assert engine.problems(dict(SETTINGS, users=["ops", "eve", "mallory"])) == [
        "docker_engine_users names users that do not exist: eve, mallory"
    ]
    (message,) = engine.problems(dict(SETTINGS, daemon_options={"ip": PUBLIC}))
    assert message.startswith(f'docker_engine_daemon_options.ip is "{PUBLIC}" but glassbox_tls')
    assert engine.problems(dict(SETTINGS, source="docker", distribution_packages=[])) == []
