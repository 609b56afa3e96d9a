"""Lab 2, step 7: post-training quantization of the digits MLP with *your* quantize_weights.

Run from your lab folder: ``python ptq_report.py`` (about 20 s). It trains qmac's float MLP on
scikit-learn's digits, then prints the test accuracy with the weights quantized per channel
by your :func:`quantization.quantize_weights` at 8, 6, 4, 3 and 2 bits, and after
quantization-aware fine-tuning (qmac.digits.qat_finetune: fake-quantized forward pass,
straight-through gradients) at 4 bits.
"""

from dataclasses import replace

from quantization import quantize_weights

from qmac.digits import accuracy, float_forward, load_digits_split, qat_finetune, train_mlp

#: Weight widths of the table.
WIDTHS = (8, 6, 4, 3, 2)
#: The width QAT fine-tunes for.
QAT_BITS = 4


def with_weights(model, bits):
    """``model`` with every layer's weights replaced by quantize_weights(w, bits)."""
    return [replace(layer, w=quantize_weights(layer.w, bits).astype(layer.w.dtype))
            for layer in model]


def main():
    x_train, y_train, x_test, y_test = load_digits_split()
    model = train_mlp(x_train, y_train)
    rows = [("float32 weights", float_forward(model, x_test))]
    rows += [(f"{bits}-bit weights, PTQ", float_forward(with_weights(model, bits), x_test))
             for bits in WIDTHS]
    tuned = qat_finetune(model, x_train, y_train, weight_bits=QAT_BITS)
    tuned = [replace(layer, weight_bits=None) for layer in tuned]
    rows.append((f"{QAT_BITS}-bit weights, QAT", float_forward(with_weights(tuned, QAT_BITS),
                                                                x_test)))
    for label, scores in rows:
        print(f"{label:22} test accuracy {accuracy(scores, y_test):.1%}")


if __name__ == "__main__":
    main()
