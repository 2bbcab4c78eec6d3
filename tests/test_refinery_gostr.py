"""Go value semantics (nectar.refinery.gostr) against known Go outputs and properties."""

from __future__ import annotations

import math
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nectar.refinery import gostr

# Known Go outputs: fmt.Sprintf("%v", float64(x)).
GO_FLOATS = [
    (1e6, "1e+06"),
    (999999.5, "999999.5"),
    (999999.0, "999999"),
    (1e-5, "1e-05"),
    (0.0001, "0.0001"),
    (-0.0, "-0"),
    (0.0, "0"),
    (500.0, "500"),
    (1234567.0, "1.234567e+06"),
    (123456.7, "123456.7"),
    (0.1, "0.1"),
    (1.5e300, "1.5e+300"),
    (5e-324, "5e-324"),
    (1.7976931348623157e308, "1.7976931348623157e+308"),
    (1e21, "1e+21"),
    (1e100, "1e+100"),
    (-2.5, "-2.5"),
    (0.000123, "0.000123"),
    (0.0000123, "1.23e-05"),
    (float("nan"), "NaN"),
    (float("inf"), "+Inf"),
    (float("-inf"), "-Inf"),
]


@pytest.mark.parametrize(("f", "want"), GO_FLOATS)
def test_go_v_float_known(f: float, want: str) -> None:
    assert gostr.go_v_float(f) == want
    assert gostr.go_v(f) == want


@pytest.mark.parametrize(
    ("v", "want"),
    [
        (None, "<nil>"),
        (True, "true"),
        (False, "false"),
        (500, "500"),
        (-7, "-7"),
        (18446744073709551615, "18446744073709551615"),
        ("a b", "a b"),
        ("", ""),
        (["a", 1], "[a 1]"),
        ([], "[]"),
        ({"k": 1, "a": None}, "map[a:<nil> k:1]"),
        ({}, "map[]"),
        ([{"b": [1.5, True]}], "[map[b:[1.5 true]]]"),
        ((1e6,), "[1e+06]"),
    ],
)
def test_go_v(v: object, want: str) -> None:
    assert gostr.go_v(v) == want


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_go_v_float_round_trips_and_shape(f: float) -> None:
    s = gostr.go_v_float(f)
    assert float(s) == f
    assert math.copysign(1.0, float(s)) == math.copysign(1.0, f)
    if f != 0:
        x = math.floor(math.log10(abs(f))) if abs(f) >= 1e-300 else -400
        exp = "e" in s
        # %v switches to scientific notation outside [1e-4, 1e6) (allowing for log10 rounding at the edges).
        if 1e-4 <= abs(f) < 1e6 - 1:
            assert not exp, s
        if abs(f) >= 1e6 or abs(f) < 1e-4:
            assert exp, s
        if exp:
            mant, e = s.split("e")
            assert e[0] in "+-" and len(e) >= 3
            assert not mant.rstrip("0").endswith(".")
            assert x is not None


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_go_v_float_digits_are_shortest(f: float) -> None:
    # Same significant digits as Python's repr (both are shortest round-trip).
    s = gostr.go_v_float(abs(f))
    r = repr(abs(f))

    def digits(t: str) -> str:
        return t.split("e")[0].replace(".", "").lstrip("0").rstrip("0")

    assert digits(s) == digits(r)


@pytest.mark.parametrize(
    ("s", "want"),
    [
        ("500", 500),
        ("+500", 500),
        ("-5", -5),
        ("007", 7),
        ("9223372036854775807", 2**63 - 1),
        ("-9223372036854775808", -(2**63)),
        ("9223372036854775808", None),
        (" 500", None),
        ("500 ", None),
        ("500.0", None),
        ("1_000", None),
        ("0x1F", None),
        ("", None),
        ("+", None),
        ("١٢", None),  # non-ASCII digits
    ],
)
def test_atoi(s: str, want: int | None) -> None:
    assert gostr.atoi(s) == want


@pytest.mark.parametrize(
    ("s", "want"),
    [
        ("1e3", 1000.0),
        (".5", 0.5),
        ("5.", 5.0),
        ("-0", -0.0),
        ("inf", math.inf),
        ("+Inf", math.inf),
        ("-Infinity", -math.inf),
        ("INFINITY", math.inf),
        ("0x1p-2", 0.25),
        ("0X1P3", 8.0),
        ("-0x1.8p1", -3.0),
        ("0x_1_2.3_4_5p+1_2", 74565.0),
        ("1_23.50_0_0e+1_2", 1.235e14),
        ("1e-400", 0.0),
        ("1e400", None),
        ("0x1p2000", None),
        ("+nan", None),
        ("-nan", None),
        ("nan(1)", None),
        ("infin", None),
        ("0x1", None),
        (" 1", None),
        ("1 ", None),
        ("1e", None),
        ("1e+", None),
        (".", None),
        ("", None),
        ("_1", None),
        ("1_", None),
        ("1__0", None),
        ("123._5", None),
        ("123.5e+12_", None),
        ("1e100x", None),
        ("0b1", None),
        ("0o7", None),
    ],
)
def test_parse_float(s: str, want: float | None) -> None:
    got = gostr.parse_float(s)
    if want is None:
        assert got is None
    else:
        assert got == want
        assert math.copysign(1, got) == math.copysign(1, want)


def test_parse_float_nan() -> None:
    for s in ("NaN", "nan", "NAN"):
        v = gostr.parse_float(s)
        assert v is not None and math.isnan(v)


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_parse_float_reads_go_output(f: float) -> None:
    assert gostr.parse_float(gostr.go_v_float(f)) == f
    assert gostr.parse_float(repr(f)) == f
    assert gostr.parse_float(f.hex()) == f


@given(st.text(max_size=12))
def test_parse_float_never_raises_and_agrees_with_python_where_plain(s: str) -> None:
    got = gostr.parse_float(s)
    if got is not None and not math.isnan(got):
        assert isinstance(got, float)
    if s.isascii() and s.strip() == s and s and all(c in "0123456789.-+e" for c in s):
        try:
            py: float | None = float(s)
        except ValueError:
            py = None
        assert got == py or (py is not None and math.isinf(py) and got is None)


@given(st.integers(min_value=-(2**63), max_value=2**63 - 1))
def test_atoi_round_trip(n: int) -> None:
    assert gostr.atoi(str(n)) == n
    assert gostr.atoi(f"+{n}" if n >= 0 else str(n)) == n


def test_parse_bool() -> None:
    for s in ("1", "t", "T", "TRUE", "true", "True"):
        assert gostr.parse_bool(s) is True
    for s in ("0", "f", "F", "FALSE", "false", "False"):
        assert gostr.parse_bool(s) is False
    for s in ("yes", "on", "tRUE", "2", "", " true"):
        assert gostr.parse_bool(s) is None


@pytest.mark.parametrize(
    ("a", "b", "want"),
    [
        (None, None, 0),
        (None, 1, -1),
        (None, "x", -1),
        (1, None, 1),
        ("x", None, 1),
        ([1], None, 1),
        (500, 500, 0),
        (500, 500.0, 0),
        (500.5, 500, 1),
        (499.0, 500, -1),
        (float("nan"), 1, 0),  # Go's switch falls to "equal" for NaN
        (True, False, 1),
        (False, True, -1),
        (True, True, 0),
        (True, 1, None),
        (1, True, None),
        ("500", 500, None),
        (500, "500", None),
        ("2", "10", 1),
        ("a", "b", -1),
        ("é", "z", 1),  # byte-wise: 0xC3 > 'z'
        (5, 18446744073709551615, None),  # a YAML uint64 rule value has no case
        ({"a": 1}, {"a": 1}, None),
        ([1], [1], None),
    ],
)
def test_compare(a: object, b: object, want: int | None) -> None:
    assert gostr.compare(a, b) == want


@pytest.mark.parametrize(
    ("v", "i", "f", "s", "b"),
    [
        (500, 500, 500.0, "500", False),
        (1, 1, 1.0, "1", True),
        (500.9, 500, 500.9, "500.9", False),
        (-500.9, -500, -500.9, "-500.9", False),
        ("+500", 500, 500.0, "+500", False),
        (" 500", None, None, " 500", False),
        ("500.0", None, 500.0, "500.0", False),
        ("1_000", None, 1000.0, "1_000", False),
        ("0x1F", None, None, "0x1F", False),
        ("abc", None, None, "abc", False),
        ("true", None, None, "true", True),
        ("T", None, None, "T", True),
        ("yes", None, None, "yes", False),
        (True, None, None, "true", True),
        (False, None, None, "false", False),
        (None, None, None, "<nil>", False),
        (2**64 - 1, None, None, "18446744073709551615", False),
        (1e6, 1000000, 1e6, "1e+06", False),
    ],
)
def test_datatype_conversions(v: object, i: int | None, f: float | None, s: str, b: bool) -> None:
    assert gostr.to_int(v) == i
    assert gostr.to_float(v) == f
    assert gostr.to_string(v) == s
    assert gostr.to_bool(v) is b


def test_to_int_float_edge_cases() -> None:
    assert gostr.to_int(float("nan")) == gostr.INT64_MIN
    assert gostr.to_int(1e300) == gostr.INT64_MIN


def test_deterministic_hash_matches_definition() -> None:
    import hashlib

    tid = "0af7651916cd43dd8448eb211c80319c"
    d = hashlib.sha1((tid + "5VQ8l2jE5aJLPVqk").encode()).digest()
    assert gostr.deterministic_hash(tid) == struct.unpack(">I", d[:4])[0]
    assert gostr.deterministic_keep(tid, 1) is True
    assert gostr.deterministic_keep(tid, 0) is True
    h = gostr.deterministic_hash(tid)
    for rate in (2, 3, 10, 100, 1000):
        assert gostr.deterministic_keep(tid, rate) is (h <= (2**32 - 1) // rate)


def test_deterministic_keep_fraction() -> None:
    kept = sum(gostr.deterministic_keep(f"trace-{i}", 10) for i in range(20000))
    assert 1800 < kept < 2200


def test_deterministic_limit_is_maxuint32_over_rate() -> None:
    # sample/deterministic.go: upperBound = math.MaxUint32 / uint32(SampleRate); keep iff hash <= upperBound.
    assert gostr.deterministic_limit(2) == 2_147_483_647
    assert gostr.deterministic_limit(3) == 1_431_655_765
    assert gostr.deterministic_limit(10) == 429_496_729
    assert gostr.deterministic_limit(2**32 + 2) == 2_147_483_647  # uint32(rate) wraps
