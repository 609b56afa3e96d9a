"""Lab 2 autograder: the student's affine quantization against golden.quantization (and the
grader's own reading of the straight-through estimator), on data drawn from the run's seed."""

import numpy as np

from golden.quantization import calibrate, choose_qparams, dequantize, qrange, quantize
from labs.grading import Lab, Part, require

CASES = 200
#: Relative tolerance on scales: the formulas are the same, the float operations may be
#: ordered differently.
SCALE_RTOL = 1e-12
WIDTHS = (2, 3, 4, 6, 8, 12, 16)


def _width(rng):
    return int(WIDTHS[int(rng.integers(len(WIDTHS)))])


def _range(rng):
    lo, hi = sorted(rng.normal(0, 10, size=2) * rng.choice([1e-3, 1, 1e3]))
    return float(lo), float(hi)


def check_qrange_and_rounding(student, rng):
    for bits in WIDTHS:
        for signed in (True, False):
            for narrow in (False, True):
                got, expected = tuple(student.qrange(bits, signed, narrow)), \
                    qrange(bits, signed, narrow)
                require(got == expected, f"qrange({bits}, {signed}, {narrow}) returned {got}, "
                                         f"expected {expected}")
    halves = rng.integers(-1000, 1000, size=CASES) + 0.5
    values = np.concatenate([halves, rng.normal(0, 100, size=CASES)])
    expected = np.sign(values) * np.floor(np.abs(values) + 0.5)
    got = np.asarray(student.round_half_away(values))
    bad = np.flatnonzero(got != expected)
    require(got.shape == expected.shape and not bad.size,
            f"round_half_away({values[bad[0]] if bad.size else values!r}) is wrong: expected "
            f"{expected[bad[0]] if bad.size else expected}")


def check_qparams(student, rng):
    for _ in range(CASES):
        rmin, rmax = _range(rng)
        bits, signed = _width(rng), bool(rng.integers(2))
        symmetric, narrow = bool(rng.integers(2)), bool(rng.integers(2)) and signed
        expected = choose_qparams(rmin, rmax, bits=bits, signed=signed, symmetric=symmetric,
                                  narrow_range=narrow)
        call = (f"qparams({rmin!r}, {rmax!r}, bits={bits}, signed={signed}, "
                f"symmetric={symmetric}, narrow_range={narrow})")
        scale, zero_point = student.qparams(rmin, rmax, bits, signed, symmetric, narrow)
        require(np.isclose(scale, float(expected.scale), rtol=SCALE_RTOL, atol=0) and
                int(zero_point) == int(expected.zero_point),
                f"{call} returned ({scale!r}, {zero_point!r}), expected "
                f"({float(expected.scale)!r}, {int(expected.zero_point)})")


def check_quantize(student, rng):
    for _ in range(CASES // 4):
        bits, signed = _width(rng), bool(rng.integers(2))
        rmin, rmax = _range(rng)
        params = choose_qparams(rmin, rmax, bits=bits, signed=signed)
        scale, zero_point = float(params.scale), int(params.zero_point)
        exact_scale = 2.0 ** int(rng.integers(-8, 8))     # ties are exact with this scale
        for s, r in ((scale, rng.uniform(2 * rmin - 1, 2 * rmax + 1, size=64)),
                     (exact_scale, (rng.integers(-300, 300, size=64) + 0.5) * exact_scale)):
            p = choose_qparams(rmin, rmax, bits=bits, signed=signed)
            p = type(p)(scale=s, zero_point=zero_point, bits=bits, signed=signed)
            expected = quantize(r, p)
            got = np.asarray(student.quantize(r, s, zero_point, bits, signed))
            bad = np.flatnonzero(got != expected)
            require(got.shape == expected.shape and not bad.size,
                    f"quantize(r={r[bad[0]] if bad.size else r!r}, scale={s!r}, "
                    f"zero_point={zero_point}, bits={bits}, signed={signed}) returned "
                    f"{got[bad[0]] if bad.size else got.shape}, expected "
                    f"{expected[bad[0]] if bad.size else expected.shape}")
            back = np.asarray(student.dequantize(expected, s, zero_point))
            require(np.allclose(back, dequantize(expected, p), rtol=1e-15, atol=0),
                    f"dequantize(q, {s!r}, {zero_point}) is not S·(q − Z)")


def _weights(rng):
    n, k = int(rng.integers(1, 17)), int(rng.integers(1, 65))
    w = rng.normal(0, 1, size=(n, k)) * rng.uniform(0.01, 3, size=(n, 1))
    w[int(rng.integers(n))] *= 0 if rng.integers(4) == 0 else 1     # sometimes a zero row
    return w


def check_per_channel(student, rng):
    for _ in range(CASES // 4):
        w, bits = _weights(rng), int(rng.integers(2, 9))
        expected = calibrate(w, axis=0, bits=bits, symmetric=True, narrow_range=True)
        got = np.asarray(student.per_channel_scales(w, bits))
        require(got.shape == expected.scale.shape and
                np.allclose(got, expected.scale, rtol=SCALE_RTOL, atol=0),
                f"per_channel_scales(w of shape {w.shape}, {bits}) returned {got}, expected "
                f"{expected.scale}")
        fake = np.asarray(student.quantize_weights(w, bits))
        reference = dequantize(quantize(w, expected), expected)
        require(fake.shape == w.shape and np.allclose(fake, reference, rtol=1e-12, atol=0),
                f"quantize_weights(w of shape {w.shape}, {bits}) differs from quantizing per "
                f"channel and dequantizing (largest difference "
                f"{np.abs(fake - reference).max() if fake.shape == w.shape else 'shape'})")


def check_percentile(student, rng):
    for _ in range(CASES // 10):
        data = rng.standard_t(3, size=int(rng.integers(100, 5000))) * rng.uniform(0.1, 10)
        percentile = float(rng.choice([100.0, 99.99, 99.9, 99.0, rng.uniform(90, 100)]))
        bits = int(rng.integers(4, 9))
        expected = calibrate(data, method="percentile", percentile=percentile, bits=bits)
        scale, zero_point = student.percentile_qparams(data, percentile, bits)
        require(np.isclose(scale, float(expected.scale), rtol=SCALE_RTOL, atol=0) and
                int(zero_point) == int(expected.zero_point),
                f"percentile_qparams(data, {percentile}, {bits}) returned ({scale!r}, "
                f"{zero_point!r}), expected ({float(expected.scale)!r}, "
                f"{int(expected.zero_point)})")


def check_fake_quant(student, rng):
    for _ in range(CASES // 4):
        bits, signed = _width(rng), bool(rng.integers(2))
        params = choose_qparams(*_range(rng), bits=bits, signed=signed)
        scale, zero_point = float(params.scale), int(params.zero_point)
        lo, hi = scale * (params.qmin - zero_point), scale * (params.qmax - zero_point)
        x = np.concatenate([rng.uniform(lo - (hi - lo), hi + (hi - lo), size=64), [lo, hi]])
        y, grad = (np.asarray(v) for v in student.fake_quant(x, scale, zero_point, bits, signed))
        require(y.shape == x.shape and np.allclose(y, dequantize(quantize(x, params), params),
                                                  rtol=1e-15, atol=0),
                f"fake_quant(x, {scale!r}, {zero_point}, {bits}, {signed}): y is not "
                "dequantize(quantize(x))")
        expected = ((x >= lo) & (x <= hi)).astype(np.float64)
        require(grad.shape == x.shape, f"fake_quant: grad has shape {grad.shape}, x {x.shape}")
        for index in np.flatnonzero(grad != expected)[:1]:
            raise AssertionError(
                f"fake_quant(..., {scale!r}, {zero_point}, {bits}, {signed}): the STE gradient "
                f"at x = {x[index]!r} (range [{lo!r}, {hi!r}]) is {grad[index]}, expected "
                f"{expected[index]}")


LAB = Lab(
    number=2, title="Affine quantization", package="lab2_quantization",
    module="quantization", minutes=100,
    parts=(
        Part("qrange and round_half_away", 1, ("qrange", "round_half_away"),
             check_qrange_and_rounding),
        Part("qparams: scale and zero point, symmetric and asymmetric", 3,
             ("qparams", "qrange", "round_half_away"), check_qparams),
        Part("quantize / dequantize", 2, ("quantize", "dequantize"), check_quantize),
        Part("per-channel weights", 3, ("per_channel_scales", "quantize_weights"),
             check_per_channel),
        Part("percentile calibration", 2, ("percentile_qparams",), check_percentile),
        Part("fake quantization and the straight-through estimator", 2, ("fake_quant",),
             check_fake_quant),
    ))
