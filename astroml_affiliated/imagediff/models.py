"""The slim TransiNet-style network, built in code (weights are loaded into it).

TransiNet (Sedaghat & Mahabal 2018) feeds the reference and the science image as two
channels to a FlowNet-style encoder-decoder with skip connections, supervises a
prediction at every decoder scale with an L1 loss and predicts an image of the transients
alone. This version keeps that idea at about 1/150 of the size:

* input ``(H, W, 2)``: science and reference, both normalised per pair in units of the
  science image's sky noise (see :mod:`astroml_affiliated.imagediff.core`), reference
  already resampled onto the science grid and scaled to its photometric zero point;
* encoder: two 3x3 convolutions per scale, stride-2 convolutions between scales (three
  down-samplings, so H and W must be multiples of 8), a dilated bottleneck;
* decoder: stride-2 transposed convolutions, concatenation with the encoder features of
  the same scale and with the up-sampled coarser prediction (as in FlowNet);
* outputs: the transient image at full, 1/2 and 1/4 resolution (the coarse ones only for
  multi-scale supervision in training). LeakyReLU(0.1) as in TransiNet.

The output is linear in the normalised flux, so inverting the normalisation gives flux in
the science image's units.
"""

__all__ = ["build_transinet_slim", "DOWNSAMPLING"]

#: H and W of the network's input must be multiples of this.
DOWNSAMPLING = 8


def build_transinet_slim(base=24, *, in_channels=2, seed=None):
    """Build the slim TransiNet-style difference network.

    Parameters
    ----------
    base : int
        Filters at full resolution; 2x, 4x and 8x this at the coarser scales.
    in_channels : int
        Input channels (science, reference).
    seed : int, optional
        Seed of the weight initialisers (training only; loaded weights replace them).

    Returns
    -------
    `keras.Model`
        Fully convolutional: input ``(batch, H, W, in_channels)`` with H, W multiples of
        8; three outputs ``(batch, H, W, 1)``, ``(batch, H/2, W/2, 1)`` and
        ``(batch, H/4, W/4, 1)``.
    """
    from ..device import import_keras

    keras = import_keras()
    L = keras.layers
    init = keras.initializers.HeNormal(seed=seed)
    counter = [0]

    def conv(x, filters, *, stride=1, dilation=1, kernel=3):
        counter[0] += 1
        x = L.Conv2D(filters, kernel, strides=stride, dilation_rate=dilation,
                     padding="same", kernel_initializer=init,
                     name=f"conv{counter[0]}")(x)
        return L.LeakyReLU(negative_slope=0.1)(x)

    def up(x, filters):
        counter[0] += 1
        x = L.Conv2DTranspose(filters, 4, strides=2, padding="same",
                              kernel_initializer=init, name=f"upconv{counter[0]}")(x)
        return L.LeakyReLU(negative_slope=0.1)(x)

    def predict(x, name):
        return L.Conv2D(1, 3, padding="same", kernel_initializer="zeros", name=name)(x)

    b = int(base)
    inp = keras.Input((None, None, in_channels), name="pair")
    s0 = conv(conv(inp, b), b)                         # H
    s1 = conv(conv(s0, 2 * b, stride=2), 2 * b)        # H/2
    s2 = conv(conv(s1, 4 * b, stride=2), 4 * b)        # H/4
    x = conv(s2, 8 * b, stride=2)                      # H/8
    x = conv(x, 8 * b, dilation=2)

    x = up(x, 4 * b)
    x = conv(L.Concatenate()([x, s2]), 4 * b)
    p2 = predict(x, "pred_quarter")
    x = up(x, 2 * b)
    p2_up = L.UpSampling2D(2, interpolation="nearest")(p2)
    x = conv(L.Concatenate()([x, s1, p2_up]), 2 * b)
    p1 = predict(x, "pred_half")
    x = up(x, b)
    p1_up = L.UpSampling2D(2, interpolation="nearest")(p1)
    x = conv(L.Concatenate()([x, s0, p1_up, inp]), b)
    x = conv(x, b)
    p0 = predict(x, "pred_full")
    return keras.Model(inp, [p0, p1, p2], name="transinet_slim")
