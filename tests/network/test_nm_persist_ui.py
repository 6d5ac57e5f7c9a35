"""The interfaces tab's “Make Permanent…” button against a real NetworkManager.

NetworkManager runs privately (tests/lab/network_manager.py); the window finds
it through DBUS_SYSTEM_BUS_ADDRESS, which is set before the window is built.
"""

from __future__ import annotations

from tests.network import test_host_interfaces_ui as interfaces_ui
from tests.network import test_nm_persist_real as real
from tests.network.conftest import ip

pytestmark = real.pytestmark

# The private daemon must exist before the tab checks for it, so ``nm`` comes first.
nm = real.nm
tab = interfaces_ui.tab


def test_make_permanent_button_stores_the_bridge(nm, tab, qtbot):
    tab, host, _opened, window = tab
    qtbot.waitUntil(lambda: "NetworkManager runs here" in tab.nm_label.text(), timeout=20000)
    ip("-n", host.netns, "link", "add", "vs-keep", "type", "bridge")
    qtbot.waitUntil(lambda: "vs-keep" in interfaces_ui.names(tab), timeout=20000)
    assert tab.select("vs-keep") and tab.permanent_button.isEnabled()
    interfaces_ui.click(qtbot, tab.permanent_button)
    job = window.runner.jobs[-1]
    qtbot.waitUntil(lambda: job.state.finished, timeout=10000)
    assert job.state.value == "Done", job.error
    assert any("NetworkManager stored it as /org/freedesktop/NetworkManager/Settings/" in line
               for _when, line in job.log_lines)
    stored = [p for p in nm.profiles().values()
              if p["connection"]["interface-name"] == "vs-keep"]
    assert len(stored) == 1 and stored[0]["connection"]["type"] == "bridge"
    assert (nm.keyfiles / "virtstudio-vs-keep.nmconnection").is_file()

