"""The desktop entry and AppStream metadata validate with the distributions' own tools."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

RESOURCES = Path(__file__).resolve().parent.parent / "virtstudio" / "resources"
APP_ID = "org.virtstudio.VirtStudio"


def _run(tool: str, *args: str) -> subprocess.CompletedProcess[str]:
    if shutil.which(tool) is None:
        pytest.fail(f"{tool} is not installed: run 'make setup'")
    return subprocess.run([tool, *args], capture_output=True, text=True, timeout=60)


def test_desktop_entry_is_valid():
    result = _run("desktop-file-validate", str(RESOURCES / f"{APP_ID}.desktop"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_metainfo_is_valid():
    result = _run("appstreamcli", "validate", "--no-net",
                  str(RESOURCES / f"{APP_ID}.metainfo.xml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_icon_is_shipped():
    icon = RESOURCES / "icons" / "hicolor" / "scalable" / "apps" / "virtstudio.svg"
    assert icon.read_text().lstrip().startswith("<svg")


REPO = Path(__file__).resolve().parent.parent
DEBIAN = REPO / "debian"


def _control_field(name: str) -> set[str]:
    """Package names in one relationship field of the binary package's stanza."""
    stanza = DEBIAN.joinpath("control").read_text().split("\n\n")[1]
    value, collecting = [], False
    for line in stanza.splitlines():
        if line.startswith(f"{name}:"):
            collecting = True
            value.append(line.split(":", 1)[1])
        elif collecting and line.startswith(" "):
            value.append(line)
        else:
            collecting = False
    return {part.split("(")[0].strip() for part in ",".join(value).split(",") if part.strip()}


def test_resources_are_found_through_the_installed_package():
    from virtstudio.core.demo import demo_fixture_path, resources_dir

    assert resources_dir() == RESOURCES
    assert demo_fixture_path().is_file()


def test_debian_package_names_what_the_app_runs():
    depends = _control_field("Depends")
    recommends = _control_field("Recommends")
    assert {"libvirt-clients", "qemu-utils", "bubblewrap", "passt", "pkexec"} <= depends
    assert {"lvm2", "libvirt-daemon-system"} <= recommends


def test_debian_package_installs_the_helper_and_policy_as_shipped():
    rules = DEBIAN.joinpath("rules").read_text()
    assert "packaging/polkit/virtstudio-helper" in rules
    assert "$(PKG)/usr/libexec/virtstudio/virtstudio-helper" in rules
    assert "echo '#!$(VENV)/bin/python3 -I'" in rules
    assert "packaging/polkit/org.virtstudio.VirtStudio.policy" in rules
    for path in ("usr/share/applications/org.virtstudio.VirtStudio.desktop",
                 "usr/share/metainfo/org.virtstudio.VirtStudio.metainfo.xml",
                 "usr/share/icons/hicolor/scalable/apps/virtstudio.svg",
                 "usr/bin/virtstudio"):
        assert f"$(PKG)/{path}" in rules, path


def test_man_page_documents_every_option():
    from virtstudio.cli import build_parser

    page = DEBIAN.joinpath("virtstudio.1").read_text().replace("\\-", "-")
    options = {opt for action in build_parser()._actions for opt in action.option_strings
               if opt.startswith("--")}
    assert options, "no options found"
    missing = sorted(opt for opt in options if opt not in page)
    assert not missing, f"the man page lacks {missing}"


def test_launcher_keeps_user_python_settings_out():
    launcher = REPO.joinpath("packaging/deb/virtstudio").read_text().splitlines()
    assert launcher[0] == "#!/bin/sh"
    assert launcher[-1] == 'exec /usr/lib/virtstudio/venv/bin/python3 -I -B -m virtstudio "$@"'
