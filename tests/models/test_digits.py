"""qmac.digits: the quantized digits networks against an independent reference.

The reference below shares no code with golden/: plain Python ints, the affine layer as a
loop of Σ (x − Z_x)(w − Z_w) + bias, the convolution as a direct loop over pixels and taps,
and the requantization as a transliteration of gemmlowp's SaturatingRoundingDoublingHighMul
and RoundingDivideByPOT (TFLite's MultiplyByQuantizedMultiplier, default build).
"""

import numpy as np
import pytest

from golden.layers import fully_connected, im2col
from golden.tflite import tflite_multiplier
from qmac import digits

I32_MIN, I32_MAX = -(1 << 31), (1 << 31) - 1
SAMPLES = 4  # plus up to as many where TFLite's two rounding builds disagree


# ------------------------------------------------------------------ pure-int reference

def srdhm(a, b):
    """gemmlowp SaturatingRoundingDoublingHighMul, on Python ints."""
    if a == b == I32_MIN:
        return I32_MAX
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
    total = ab + nudge
    quotient = abs(total) >> 31  # C++ integer division truncates toward zero
    return quotient if total >= 0 else -quotient


def rdbpot(x, exponent):
    """gemmlowp RoundingDivideByPOT, on Python ints."""
    mask = (1 << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if remainder > threshold else 0)


def mbqm(x, m0, shift):
    """TFLite MultiplyByQuantizedMultiplier (double rounding)."""
    left, right = max(shift, 0), max(-shift, 0)
    return rdbpot(srdhm(x * (1 << left), m0), right)


def requantize(acc, layer, n):
    assert I32_MIN <= acc <= I32_MAX
    value = mbqm(acc, int(layer.multiplier[n]), int(layer.shift[n]))
    return min(max(value + layer.output_zero_point, layer.act_min), layer.act_max)


def ref_affine(row, layer):
    """One input row (list of ints) through a fully-connected layer."""
    zx, zw = layer.input_zero_point, layer.weight_zero_point
    out = []
    for n, weights in enumerate(layer.w.tolist()):
        acc = sum((x - zx) * (w - zw) for x, w in zip(row, weights, strict=True))
        out.append(requantize(acc + int(layer.bias[n]), layer, n))
    return out


def ref_same_padding(size, kernel, stride):
    out = -(-size // stride)
    return out, max((out - 1) * stride + kernel - size, 0) // 2


def ref_conv(image, layer):
    """One NHWC image (nested lists [H][W][C]) through a 'same' convolution, direct loops."""
    spec = layer.conv
    (height, width, channels), (kh, kw), (sh, sw) = spec.in_shape, spec.kernel, spec.stride
    assert spec.padding == "same"
    oh, top = ref_same_padding(height, kh, sh)
    ow, left = ref_same_padding(width, kw, sw)
    zx = layer.input_zero_point
    weights = layer.w.tolist()
    out = []
    for oy in range(oh):
        out_row = []
        for ox in range(ow):
            pixel = []
            for n, filt in enumerate(weights):
                acc = 0
                for ky in range(kh):
                    for kx in range(kw):
                        iy, ix = oy * sh + ky - top, ox * sw + kx - left
                        for c in range(channels):
                            x = image[iy][ix][c] if 0 <= iy < height and 0 <= ix < width else zx
                            acc += (x - zx) * (filt[(ky * kw + kx) * channels + c]
                                               - layer.weight_zero_point)
                pixel.append(requantize(acc + int(layer.bias[n]), layer, n))
            out_row.append(pixel)
        out.append(out_row)
    return out


def ref_network(layers, x_q):
    """Every layer's output for each sample, each layer fed the reference's own output."""
    per_layer = [[] for _ in layers]
    for sample in x_q:
        x = sample
        for i, layer in enumerate(layers):
            if layer.conv is None:
                x = ref_affine(np.asarray(x).reshape(-1).tolist(), layer)
            else:
                x = ref_conv(np.asarray(x).reshape(layer.conv.in_shape).tolist(), layer)
            per_layer[i].append(x)
    return per_layer


# ------------------------------------------------------------------ fixtures

@pytest.fixture(scope="module")
def data():
    return digits.load_digits_split(0)


def _trained(data, train):
    x_train, y_train, x_test, y_test = data
    model = train(x_train, y_train)
    return model, digits.quantize_model(model, x_train)


@pytest.fixture(scope="module")
def mlp(data):
    return _trained(data, digits.train_mlp)


@pytest.fixture(scope="module")
def cnn(data):
    return _trained(data, digits.train_cnn)


@pytest.fixture(scope="module", params=["mlp", "cnn"])
def network(request):
    return request.param, *request.getfixturevalue(request.param)


# ------------------------------------------------------------------ tests

def test_split_is_deterministic_and_stratified(data):
    x_train, y_train, x_test, y_test = data
    assert x_train.dtype == np.float32 and x_train.shape == (1347, 64)
    assert x_test.shape == (450, 64) and 0.0 <= x_train.min() and x_train.max() == 1.0
    again = digits.load_digits_split(0)
    assert all(np.array_equal(a, b) for a, b in zip(data, again, strict=True))
    train_share = np.bincount(y_train) / (np.bincount(y_train) + np.bincount(y_test))
    assert np.all(np.abs(train_share - 0.75) < 0.01)


def _rounding_sensitive(layers, x_q):
    """Indices of images whose outputs change under TFLITE_SINGLE_ROUNDING: a reference that
    rounded once, or rounded ties differently, fails on them."""
    def single(x, w, layer):
        return fully_connected(x, w, layer.bias, rounding="single", **layer.requant_params())

    double = digits.run_quantized(layers, x_q)
    other = digits.run_quantized(layers, x_q, gemm=single)
    differs = np.zeros(len(x_q), bool)
    for a, b in zip(double, other, strict=True):
        differs |= (a != b).reshape(len(x_q), -1).any(axis=1)
    return np.flatnonzero(differs)


@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_layers_match_pure_int_reference(request, data, name):
    _, layers = request.getfixturevalue(name)
    all_q = digits.quantize_input(layers, data[2])
    sensitive = _rounding_sensitive(layers, all_q)
    assert sensitive.size  # else this test could not tell the rounding builds apart
    x_q = all_q[np.r_[np.arange(SAMPLES), sensitive[:SAMPLES]]]
    got = digits.run_quantized(layers, x_q)
    expected = ref_network(layers, x_q)
    for out, ref in zip(got, expected, strict=True):
        assert out.dtype.kind == "i" and out.min() >= -128 and out.max() <= 127
        assert out.tolist() == ref


def test_int8_accuracy_close_to_float(data, network):
    name, model, layers = network
    _, _, x_test, y_test = data
    float_acc = digits.accuracy(digits.float_forward(model, x_test), y_test)
    int8_acc = digits.accuracy(digits.predict_quantized(layers, x_test), y_test)
    assert float_acc >= (0.95 if name == "mlp" else 0.93)
    assert abs(int8_acc - float_acc) <= 0.02


def test_weights_use_full_symmetric_range(network):
    _, model, layers = network
    for float_layer, layer in zip(model, layers, strict=True):
        assert layer.weight_zero_point == 0
        assert np.array_equal(np.abs(layer.w).max(axis=1), np.full(layer.w.shape[0], 127))
        assert layer.w.min() >= -127  # narrow range: −128 never used
        # the scale is max|w| / 127 per channel, rounded to float32 as a .tflite stores it
        expected = (np.abs(float_layer.w).max(axis=1) / 127).astype(np.float64)
        np.testing.assert_allclose(layer.weight_scale, expected, rtol=1e-6)


def test_bias_scale_is_input_times_weight_scale(network):
    _, model, layers = network
    previous = None
    for float_layer, layer in zip(model, layers, strict=True):
        assert np.array_equal(layer.bias_scale, layer.input_scale * layer.weight_scale)
        assert np.all(np.abs(layer.bias * layer.bias_scale - float_layer.b)
                      <= layer.bias_scale / 2 * (1 + 1e-9))
        assert I32_MIN <= layer.bias.min() and layer.bias.max() <= I32_MAX
        if previous is not None:  # a layer reads its predecessor's output codes
            assert (layer.input_scale, layer.input_zero_point) == (
                previous.output_scale, previous.output_zero_point)
        previous = layer


def test_requantization_parameters(network):
    _, model, layers = network
    for layer in layers:
        m0, shift = tflite_multiplier(layer.input_scale, layer.weight_scale, layer.output_scale)
        assert np.array_equal(layer.multiplier, m0) and np.array_equal(layer.shift, shift)
        real = layer.input_scale * layer.weight_scale / layer.output_scale
        np.testing.assert_allclose(layer.multiplier * 2.0 ** (layer.shift - 31), real,
                                   rtol=2.0 ** -30)
        assert layer.act_max == 127
        assert layer.act_min == (layer.output_zero_point if layer.relu else -128)
    assert layers[0].input_zero_point == -128  # pixels in [0, 1]: the real 0 is code −128
    assert not layers[-1].relu


def test_gemm_hook_sees_every_layer_as_a_matmul(data, cnn):
    _, layers = cnn
    x_q = digits.quantize_input(layers, data[2][:3])
    shapes = []

    def gemm(x, w, layer):
        shapes.append((x.shape, w.shape))
        acc = x.astype(np.int64) - layer.input_zero_point
        acc = acc @ w.T.astype(np.int64) + layer.bias
        return np.array([[requantize(int(a), layer, n) for n, a in enumerate(row)]
                         for row in acc.tolist()])

    got = digits.run_quantized(layers, x_q, gemm=gemm)
    expected = digits.run_quantized(layers, x_q)
    assert all(np.array_equal(a, b) for a, b in zip(got, expected, strict=True))
    assert shapes == [((3 * 64, 9), (8, 9)), ((3, 512), (10, 512))]
    assert got[0].shape == (3, 8, 8, 8) and got[1].shape == (3, 10)


def test_float_im2col_and_its_adjoint():
    rng = np.random.default_rng(1)
    spec = digits.ConvSpec((5, 6, 3), kernel=(3, 2), stride=(2, 1), padding="same")
    x = rng.integers(-50, 50, size=(2, 5, 6, 3))
    cols, _ = im2col(x, spec.kernel, stride=spec.stride, padding=spec.padding)
    assert np.array_equal(spec.patches(x.astype(np.float64)), cols)
    # scatter is the transpose of patches: <patches(x), g> == <x, scatter(g)>
    xf = rng.normal(size=x.shape)
    g = rng.normal(size=cols.shape)
    np.testing.assert_allclose(np.sum(spec.patches(xf) * g), np.sum(xf * spec.scatter(g, 2)))


def test_bias_too_large_for_the_weight_scale_widens_it():
    """TFLite's AdjustWeightsForBiasScale: a channel of near-zero weights with a real bias."""
    rng = np.random.default_rng(2)
    w = rng.normal(size=(3, 4)).astype(np.float32)
    w[1] *= 1e-12
    layer = digits.FloatLayer(w=w, b=np.array([0.1, -0.2, 0.3], np.float32), relu=False)
    x = rng.uniform(size=(50, 4)).astype(np.float32)
    (q,) = digits.quantize_model([layer], x)
    assert abs(int(q.bias[1])) == pytest.approx(I32_MAX / 2, rel=1e-6)
    assert np.abs(q.w[[0, 2]]).max(axis=1).tolist() == [127, 127]
    out = digits.predict_quantized([q], x)
    real = digits.float_forward([layer], x)
    assert np.abs((out - q.output_zero_point) * q.output_scale - real).max() < 2 * q.output_scale


def test_qat_four_bit_weights(data, mlp):
    x_train, y_train, x_test, y_test = data
    model, _ = mlp
    tuned = digits.qat_finetune(model, x_train, y_train, weight_bits=4)
    assert all(layer.weight_bits is None for layer in model)  # the original is untouched
    layers = digits.quantize_model(tuned, x_train)
    for layer in layers:
        assert layer.weight_bits == 4
        assert np.array_equal(np.abs(layer.w).max(axis=1), np.full(layer.w.shape[0], 7))
    # the float model's fake-quantized forward is what the integer network computes
    fake = digits.float_forward(tuned, x_test)
    assert digits.accuracy(fake, y_test) >= 0.93
    assert digits.accuracy(digits.predict_quantized(layers, x_test), y_test) >= 0.93
