"""The flare CNN, built in code (weights are loaded into it, never a saved config).

The network is a windowed classifier written as a fully convolutional one (the
"a-trous" trick): every layer uses 'valid' padding, pooling has stride 1 and each layer
after a pooling is dilated by the factor that pooling would have strided, and the dense
layer is a dilated convolution spanning what is left of the window. Applied to one
window of ``window`` cadences it returns one score; applied to a longer input it returns
one score per window position, identical to scoring every window separately, at a
fraction of the cost.

Layer plan (window 200, the default)::

    input (None, 2)  channels: asinh(z), mask
    Conv1D  k=9  d=1  16 filters, relu          receptive field   9
    MaxPool k=2  d=1  (stride 1)                                  10
    Conv1D  k=5  d=2  32 filters, relu                            18
    MaxPool k=2  d=2                                              20
    Conv1D  k=5  d=4  32 filters, relu                            36
    MaxPool k=2  d=4                                              40
    Conv1D  k=21 d=8  32 filters, relu ("dense" over the window)  200
    Dropout 0.1
    Conv1D  k=1       1 filter, sigmoid
"""

__all__ = ["build_flare_cnn", "receptive_field", "build_stella_cnn"]


def _layers():
    from ..device import import_keras

    keras = import_keras()

    class DilatedMaxPool1D(keras.layers.Layer):
        """Max over ``x[t]`` and ``x[t + dilation]`` ('valid', stride 1)."""

        def __init__(self, dilation=1, **kwargs):
            super().__init__(**kwargs)
            self.dilation = int(dilation)

        def call(self, x):
            d = self.dilation
            return keras.ops.maximum(x[:, :-d, :], x[:, d:, :])

        def compute_output_shape(self, shape):
            n = None if shape[1] is None else shape[1] - self.dilation
            return (shape[0], n, shape[2])

        def get_config(self):
            return {**super().get_config(), "dilation": self.dilation}

    return keras, DilatedMaxPool1D


def _plan(window, first_kernel, kernel, n_blocks):
    """Kernel sizes so that the receptive field is exactly ``window``."""
    rf = 1
    dil = 1
    rf += first_kernel - 1
    rf += 1  # pool d=1
    for _ in range(n_blocks):
        dil *= 2
        rf += (kernel - 1) * dil
        rf += dil  # pool
    dil *= 2
    rest = window - rf
    if rest < 0:
        raise ValueError(f"window {window} is smaller than the convolutional stack ({rf})")
    dense_kernel = rest // dil + 1
    extra = rest - (dense_kernel - 1) * dil
    return first_kernel + extra, dense_kernel, dil


def receptive_field(model):
    """The window length (cadences) a model built by `build_flare_cnn` scores."""
    return int(model.window)


def build_flare_cnn(window=200, *, n_channels=2, filters=(16, 32, 32), dense=32,
                    kernel=5, first_kernel=9, dropout=0.1, seed=None):
    """Build the fully convolutional flare CNN.

    Parameters
    ----------
    window : int
        The window (receptive field) in cadences; output cell ``i`` scores input
        cadences ``i`` to ``i + window - 1``.
    n_channels : int
        Input channels (2: ``asinh(z)`` and the mask).
    filters : tuple of int
        Filters of the first convolution and of each dilated block.
    dense : int
        Units of the "dense" layer (a dilated convolution over the rest of the window).
    kernel, first_kernel : int
        Kernel sizes of the dilated blocks and of the first convolution (the first is
        enlarged when needed to make the receptive field exactly ``window``).
    dropout : float
        Dropout rate before the output (training only).
    seed : int, optional
        Seed of the weight initialisers.

    Returns
    -------
    keras.Model
        Input shape ``(None, n_channels)``, output ``(None, 1)`` probabilities;
        ``model.window`` holds ``window``.
    """
    keras, DilatedMaxPool1D = _layers()
    n_blocks = len(filters) - 1
    first, dense_kernel, dense_dil = _plan(window, first_kernel, kernel, n_blocks)
    init = keras.initializers.GlorotUniform

    def kinit(i):
        return init(seed=None if seed is None else seed + i)

    inp = keras.Input(shape=(None, n_channels), name="lightcurve")
    x = keras.layers.Conv1D(filters[0], first, activation="relu", padding="valid",
                            kernel_initializer=kinit(0), name="conv0")(inp)
    x = DilatedMaxPool1D(1, name="pool0")(x)
    dil = 1
    for i, f in enumerate(filters[1:], start=1):
        dil *= 2
        x = keras.layers.Conv1D(f, kernel, dilation_rate=dil, activation="relu",
                                padding="valid", kernel_initializer=kinit(i),
                                name=f"conv{i}")(x)
        x = DilatedMaxPool1D(dil, name=f"pool{i}")(x)
    x = keras.layers.Conv1D(dense, dense_kernel, dilation_rate=dense_dil,
                            activation="relu", padding="valid",
                            kernel_initializer=kinit(10), name="dense")(x)
    x = keras.layers.Dropout(dropout, seed=seed, name="dropout")(x)
    out = keras.layers.Conv1D(1, 1, activation="sigmoid", kernel_initializer=kinit(11),
                              name="prob")(x)
    model = keras.Model(inp, out, name="flare_cnn")
    model.window = int(window)
    return model


def build_stella_cnn(window=200):
    """Keras 3 copy of stella's (Feinstein et al. 2020) windowed CNN, for benchmarks.

    Conv1D 7x16 ('same'), MaxPool 2, Dropout 0.1, Conv1D 3x64 ('same'), MaxPool 2,
    Dropout 0.1, Flatten, Dense 32, Dropout 0.1, Dense 1 sigmoid; input (window, 1).
    """
    keras, _ = _layers()
    inp = keras.Input(shape=(window, 1))
    x = keras.layers.Conv1D(16, 7, activation="relu", padding="same")(inp)
    x = keras.layers.MaxPooling1D(2)(x)
    x = keras.layers.Dropout(0.1)(x)
    x = keras.layers.Conv1D(64, 3, activation="relu", padding="same")(x)
    x = keras.layers.MaxPooling1D(2)(x)
    x = keras.layers.Dropout(0.1)(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(32, activation="relu")(x)
    x = keras.layers.Dropout(0.1)(x)
    out = keras.layers.Dense(1, activation="sigmoid")(x)
    return keras.Model(inp, out, name="stella_cnn")
