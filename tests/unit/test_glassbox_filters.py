"""The project-wide filters (plugins/filter/glassbox.py) as plain Python."""

from __future__ import annotations

import hashlib

import pytest

from tests.unit import load_plugin

filters = load_plugin("plugins/filter/glassbox.py")


def test_credentials_beside_the_hosts_own_inventory(tmp_path):
    assert filters.credentials_dir("/srv/inv/prod", [str(tmp_path)]) == "/srv/inv/prod/credentials"


def test_credentials_beside_an_inventory_directory_given_with_i(tmp_path):
    assert filters.credentials_dir(None, [str(tmp_path)]) == str(tmp_path / "credentials")


def test_credentials_beside_an_inventory_file_given_with_i(tmp_path):
    hosts = tmp_path / "hosts.yml"
    hosts.write_text("all: {}\n")
    assert filters.credentials_dir("", [str(hosts)]) == str(tmp_path / "credentials")


def test_no_inventory_at_all_is_an_error():
    with pytest.raises(ValueError, match="-i <inventory>"):
        filters.credentials_dir(None, [])


@pytest.mark.parametrize(
    ("bind", "probe"),
    [("0.0.0.0", "127.0.0.1"), ("::", "127.0.0.1"), ("", "127.0.0.1"), ("10.1.2.3", "10.1.2.3")],  # noqa: S104
)
def test_probe_host(bind, probe):
    assert filters.probe_host(bind) == probe


def test_env_files_are_secret_0600_files_in_their_subdirectory():
    assert filters.env_files(["web"], "/r/templates") == [
        {"src": "/r/templates/web.env.j2", "dest": "env/web.env", "mode": "0600", "secret": True}
    ]
    assert filters.env_files(["vllm"], "/t", subdir="")[0]["dest"] == "vllm.env"


TWO_GPUS = (
    "580.95.05, GPU-5f1c2a4e-0000-1111-2222-333344445555, NVIDIA H100 80GB HBM3\n"
    "580.95.05, GPU-0a1b2c3d-0000-1111-2222-333344445555, NVIDIA H100 80GB HBM3\n"
)


def test_nvidia_smi_lists_every_gpu_with_its_driver():
    said = filters.nvidia_smi({"rc": 0, "stdout": TWO_GPUS, "stderr": ""})
    assert said["answers"] is True
    assert said["driver_version"] == "580.95.05"
    assert said["driver_branches"] == [580, 580]
    assert said["uuids"] == [
        "GPU-0a1b2c3d-0000-1111-2222-333344445555",
        "GPU-5f1c2a4e-0000-1111-2222-333344445555",
    ]
    assert said["gpus"][0]["name"] == "NVIDIA H100 80GB HBM3"


def test_nvidia_smi_keeps_a_comma_in_the_gpu_name():
    said = filters.nvidia_smi({"rc": 0, "stdout": "570.172.08, GPU-1, Tesla T4, rev A\n"})
    assert said["gpus"] == [
        {"driver_version": "570.172.08", "uuid": "GPU-1", "name": "Tesla T4, rev A"}
    ]
    assert said["driver_branches"] == [570]


@pytest.mark.parametrize(
    ("result", "words"),
    [
        (
            {
                "rc": 9,
                "stdout": "NVIDIA-SMI has failed because it couldn't communicate with the "
                "NVIDIA driver.",
                "stderr": "",
            },
            "couldn't communicate",
        ),
        ({"rc": 2, "msg": "[Errno 2] No such file or directory: b'nvidia-smi'"}, "Errno 2"),
        ({"rc": 0, "stdout": "", "stderr": ""}, "no output"),
        ({"rc": 0, "stdout": "No devices were found\n"}, "No devices"),
        # preflight found no NVIDIA GPU: the task was skipped, nvidia-smi not run
        (
            {"skipped": True, "changed": False, "false_condition": "x"},
            "not asked: preflight found no NVIDIA GPU",
        ),
    ],
)
def test_nvidia_smi_that_does_not_answer_says_why(result, words):
    said = filters.nvidia_smi(result)
    assert said["answers"] is False
    assert said["gpus"] == []
    assert said["driver_version"] == ""
    assert said["driver_branches"] == []
    assert words in said["said"]


RENDERED = "KEY=value\n"
FOUND = {
    "path": "/opt/glassbox/demo/env/web.env",
    "checksum": hashlib.sha1(RENDERED.encode()).hexdigest(),  # noqa: S324 - what find reports
    "mode": "0600",
    "pw_name": "root",
    "gr_name": "root",
}


def test_a_file_that_matches_its_render_is_skipped():
    assert filters.file_differs(FOUND, RENDERED, {"mode": "0600"}) is False


@pytest.mark.parametrize(
    ("found", "content", "spec"),
    [
        ({}, RENDERED, {"mode": "0600"}),  # missing
        (FOUND, "KEY=other\n", {"mode": "0600"}),  # content
        (FOUND, RENDERED.rstrip("\n"), {"mode": "0600"}),  # the trailing newline counts
        (FOUND, RENDERED, {}),  # default mode 0640
        ({**FOUND, "pw_name": "nobody"}, RENDERED, {"mode": "0600"}),
        ({**FOUND, "gr_name": "docker"}, RENDERED, {"mode": "0600"}),
    ],
    ids=["missing", "content", "newline", "mode", "owner", "group"],
)
def test_a_file_that_differs_goes_through_the_template_module(found, content, spec):
    assert filters.file_differs(found, content, spec) is True


def test_host_addresses_follow_vllm_public_host_then_ansible_host_then_the_name():
    hostvars = {
        "gpu1": {"vllm_public_host": "llm.example.internal", "ansible_host": "10.0.0.1"},
        "gpu2": {"ansible_host": "10.0.0.2"},
        "gpu3": {},
    }
    got = filters.host_addresses(["gpu1", "gpu2", "gpu3"], hostvars, "vllm_public_host")
    assert got == ["llm.example.internal", "10.0.0.2", "gpu3"]


def test_local_path_differs_compares_content_and_mode(tmp_path):
    path = tmp_path / "demo.json"
    assert filters.local_path_differs(str(path), "0600", "{}\n") is True  # missing
    path.write_text("{}\n")
    path.chmod(0o600)
    assert filters.local_path_differs(str(path), "0600", "{}\n") is False
    assert filters.local_path_differs(str(path), "0600", "{}") is True  # content
    path.chmod(0o644)
    assert filters.local_path_differs(str(path), "0600", "{}\n") is True  # mode
    tmp_path.chmod(0o700)
    assert filters.local_path_differs(str(tmp_path), "0700") is False
    assert filters.local_path_differs(str(tmp_path), "0755") is True
    assert filters.local_path_differs(str(path), "0644") is True  # a file where a directory is due


PROBE = """\
pkg ii |docker.io|26.1.5+dfsg1-9+deb13u1
pkg ii |python3-requests|2.32.3+dfsg-5
pkg rc |docker-ce|5:28.5.2-1~debian.13~trixie
pkg un |podman-docker|
pkg iU |containerd|1.7.24~ds1-6
path /etc/docker|directory|755|root|root
path /etc/docker/daemon.json|regular file|644|root|root
sha1 0a4d55a8d778e5022fab701977c5d840bbc486d0  /etc/docker/daemon.json
unit active|enabled
compose 0|2.26.1-4
"""


def test_host_probe_reads_packages_by_dpkg_state():
    now = filters.host_probe(PROBE)
    # config-files (rc) and not-installed (un) are absent for apt; unpacked (iU) is there
    assert now["present"] == ["docker.io", "python3-requests", "containerd"]
    # only a clean install counts as installed, by name and at dpkg's exact version (epoch too)
    assert "docker.io" in now["installed_specs"]
    assert "docker.io=26.1.5+dfsg1-9+deb13u1" in now["installed_specs"]
    assert "containerd" not in now["installed_specs"]
    assert not any(spec.startswith("docker-ce") for spec in now["installed_specs"])


def test_host_probe_reads_paths_checksums_unit_and_compose():
    now = filters.host_probe(PROBE)
    assert now["paths"]["/etc/docker"] == {
        "type": "directory",
        "mode": "755",
        "owner": "root",
        "group": "root",
    }
    assert now["sha1"] == {"/etc/docker/daemon.json": "0a4d55a8d778e5022fab701977c5d840bbc486d0"}
    assert now["unit"] == ["active", "enabled"]
    assert now["compose"] == {"rc": 0, "stdout": "2.26.1-4", "stderr": ""}


def test_host_probe_of_a_bare_host_finds_nothing():
    now = filters.host_probe(
        "unit inactive|not-found\ncompose 127|bash: line 1: docker: command not found\n"
    )
    assert (now["present"], now["installed_specs"], now["paths"], now["sha1"]) == ([], [], {}, {})
    assert now["unit"] == ["inactive", "not-found"]
    assert now["compose"]["rc"] == 127


def test_a_file_owned_by_root_and_another_group_compares_the_group_given():
    found = {**FOUND, "gr_name": "caddy"}
    assert filters.file_differs(found, RENDERED, {"mode": "0600"}, "root", "caddy") is False
    assert filters.file_differs(found, RENDERED, {"mode": "0600"}) is True
    assert filters.file_differs(FOUND, RENDERED, {"mode": "0600"}, "root", "caddy") is True


PROJECT_PROBE = """\
path /opt/glassbox/demo|directory|750|root|root
path /opt/glassbox/demo/env|directory|700|root|root
path /opt/glassbox/demo/env/web.env|regular file|600|root|root
path /opt/glassbox/demo/.compose-validated|regular file|600|root|root
path /opt/glassbox/demo/empty.env|regular empty file|640|root|docker
sha1 {digest}  /opt/glassbox/demo/env/web.env
compose 0|2.40.3
volume demo_data
volume demo_cache
""".format(digest=FOUND["checksum"])


def test_host_probe_reads_volumes_and_files_as_file_differs_reads_them():
    now = filters.host_probe(PROJECT_PROBE)
    assert now["volumes"] == ["demo_data", "demo_cache"]
    web = now["files"]["/opt/glassbox/demo/env/web.env"]
    assert filters.file_differs(web, RENDERED, {"mode": "0600"}) is False
    assert filters.file_differs(web, RENDERED, {"mode": "0640"}) is True
    # a file with no sha1 line has no checksum: it always differs
    assert now["files"]["/opt/glassbox/demo/.compose-validated"]["checksum"] == ""
    assert (
        filters.file_differs(now["files"]["/opt/glassbox/demo/empty.env"], "", {}) is True
    )  # group
    assert "/opt/glassbox/demo/env" not in now["files"]  # directories are paths only


def test_path_differs_compares_type_mode_and_owner():
    now = filters.host_probe(PROJECT_PROBE)["paths"]
    assert filters.path_differs(now["/opt/glassbox/demo"], "directory", "0750") is False
    assert filters.path_differs(now["/opt/glassbox/demo"], "directory", "750") is False
    assert filters.path_differs(now["/opt/glassbox/demo"], "directory", "0755") is True
    assert filters.path_differs(now["/opt/glassbox/demo/env/web.env"], "directory", "0600") is True
    assert (
        filters.path_differs(now["/opt/glassbox/demo/empty.env"], "regular empty file", "0640")
        is True
    )
    assert filters.path_differs({}, "directory", "0700") is True


def test_path_differs_compares_type_mode_owner_and_group():
    sites = {"type": "directory", "mode": "750", "owner": "root", "group": "caddy"}
    assert filters.path_differs(sites, "directory", "0750", "root", "caddy") is False
    assert filters.path_differs(sites, "directory", "0750") is True  # group defaults to root
    assert filters.path_differs(sites, "directory", "0755", "root", "caddy") is True  # mode
    assert filters.path_differs(sites, "regular file", "0750", "root", "caddy") is True  # type
    assert filters.path_differs({**sites, "owner": "caddy"}, "directory", "0750", "root", "caddy")
    assert filters.path_differs({}, "directory", "0750", "root", "caddy") is True  # missing
    root = {**sites, "group": "root"}
    assert filters.path_differs(root, "directory", "750") is False  # "750" and "0750" alike
