"""The command line: version, help and refused URIs, without starting Qt."""

from __future__ import annotations

import subprocess
import sys

import pytest

from virtstudio import __version__
from virtstudio.cli import parse_args


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "virtstudio", *args],
                          capture_output=True, text=True, timeout=60)


def test_version():
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"VirtStudio {__version__}"


def test_help_lists_connect():
    result = run_cli("--help")
    assert result.returncode == 0
    assert "--connect URI" in result.stdout
    assert "--demo" in result.stdout


def test_invalid_uri_is_refused_with_a_message():
    result = run_cli("--connect", "qemu:///nonsense")
    assert result.returncode == 2
    assert "/system or /session" in result.stderr
    assert "Traceback" not in result.stderr


def test_connect_may_repeat():
    args = parse_args(["-c", "qemu:///system", "--connect", "test:///default"])
    assert args.connect == ["qemu:///system", "test:///default"]


@pytest.mark.parametrize("argv", [["--connect", ""], ["--connect", "ftp://x/y"]])
def test_more_bad_uris(argv):
    with pytest.raises(SystemExit):
        parse_args(argv)
