from virtstudio.core.units import format_bytes, format_kib, format_percent, format_rate


def test_formats():
    assert format_bytes(0) == "0 B"
    assert format_bytes(1023) == "1023 B"
    assert format_bytes(1536) == "1.5 KiB"
    assert format_bytes(10 * 1024**3) == "10.0 GiB"
    assert format_kib(2 * 1024 * 1024) == "2.0 GiB"
    assert format_rate(2048) == "2.0 KiB/s"
    assert format_percent(5.25) == "5.2 %" or format_percent(5.25) == "5.3 %"
    assert format_percent(42.4) == "42 %"
