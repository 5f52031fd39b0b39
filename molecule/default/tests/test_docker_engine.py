"""Docker Engine and Compose v2 really work inside the Debian 13 target."""

from __future__ import annotations

import json
import re

IMAGE = "glassbox-verify/true:local"


def test_docker_service_enabled_and_running(host):
    service = host.service("docker")
    assert service.is_running
    assert service.is_enabled


def test_compose_answers_with_a_supported_version(host):
    out = host.check_output("docker compose version --short")
    # "2.26.1-4" on Debian 13, "v5.0.2" from Docker's repository: the leading x.y.z counts
    match = re.match(r"v?(\d+)\.(\d+)\.(\d+)", out)
    assert match, out
    numbers = tuple(int(x) for x in match.groups())
    assert numbers >= (2, 18, 0), out  # community.docker's MINIMUM_COMPOSE_VERSION


def test_docker_cli_installed_although_apt_skips_recommends(host):
    # prepare.yml turned recommends off; Debian 13's docker.io only recommends docker-cli.
    conf = host.file("/etc/apt/apt.conf.d/99glassbox-no-recommends")
    assert 'APT::Install-Recommends "false";' in conf.content_string
    assert host.run("apt-config dump APT::Install-Recommends").stdout.strip().endswith('"false";')
    assert host.package("docker-cli").is_installed
    assert host.exists("docker")


def test_daemon_json_is_valid_rotates_logs_and_has_one_writer(host):
    daemon = host.file("/etc/docker/daemon.json")
    assert daemon.user == "root"
    assert daemon.mode == 0o644
    config = json.loads(daemon.content_string)
    assert config["log-driver"] == "json-file"
    assert config["log-opts"] == {"max-size": "50m", "max-file": "5"}
    # dockerd itself accepts the file as rendered
    host.check_output("dockerd --validate --config-file /etc/docker/daemon.json")


def test_daemon_runs_with_the_rendered_log_driver(host):
    assert host.check_output("docker info --format '{{.LoggingDriver}}'") == "json-file"


def test_engine_runs_a_container(host):
    # No registry here: build a two-file image from the target's own /bin/true and its libc.
    script = f"""
set -eu
libs=$(ldd /bin/true | grep -o '/[^ ]*')
tar -ch /bin/true $libs 2>/dev/null | docker import - {IMAGE} >/dev/null
docker run --rm --network none {IMAGE} /bin/true
docker rmi {IMAGE} >/dev/null
echo ran
"""
    result = host.run(script)
    assert result.rc == 0, result.stderr
    assert result.stdout.strip() == "ran"
