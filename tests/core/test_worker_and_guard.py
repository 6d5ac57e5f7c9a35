import threading
import time

import libvirt

from virtstudio.core import thread_guard
from virtstudio.core.signal import Signal
from virtstudio.core.worker import Worker


def test_worker_runs_in_order_and_on_its_thread():
    worker = Worker("t")
    try:
        order = []
        futures = [worker.submit(order.append, i) for i in range(50)]
        futures[-1].result(60)
        assert order == list(range(50))
        assert worker.submit(threading.current_thread).result(60) is worker.thread
    finally:
        worker.stop()


def test_worker_timers_fire_in_time_order():
    worker = Worker("t")
    try:
        order = []
        late = worker.call_later(0.2, order.append, "late")
        worker.call_later(0.05, order.append, "early")
        late.result(60)
        assert order == ["early", "late"]
    finally:
        worker.stop()


def test_worker_reports_exceptions_through_the_future():
    worker = Worker("t")
    try:
        fut = worker.submit(lambda: 1 / 0)
        assert isinstance(fut.exception(5), ZeroDivisionError)
        assert worker.submit(lambda: 2).result(60) == 2
    finally:
        worker.stop()


def test_signal_survives_a_failing_listener():
    sig = Signal("s")
    got = []
    sig.connect(lambda x: 1 / 0)
    sig.connect(got.append)
    sig.emit(3)
    assert got == [3]


def test_guard_records_libvirt_calls_on_the_gui_thread():
    thread_guard.install()
    thread_guard.take_violations()
    thread_guard.set_gui_thread(threading.current_thread())
    try:
        conn = libvirt.open("test:///default")
        conn.getType()
    finally:
        thread_guard.set_gui_thread(None)
    found = thread_guard.take_violations()
    assert any("libvirt.open" in v for v in found)
    assert any("virConnect.getType" in v for v in found)
    # off the GUI thread nothing is recorded
    thread_guard.set_gui_thread(threading.main_thread())
    try:
        t = threading.Thread(target=lambda: libvirt.open("test:///default").getType())
        t.start()
        t.join()
    finally:
        thread_guard.set_gui_thread(None)
    assert thread_guard.take_violations() == []
    time.sleep(0)
