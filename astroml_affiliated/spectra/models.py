"""Keras architectures of the spectrum models (built in code; weights are loaded into them).

The same functions are used by training (:mod:`astroml_affiliated.training.spectra`) and by
inference (:func:`astroml_affiliated.weights.load_models`). Importing this module does not
import Keras; calling a builder does.
"""

from ..device import import_keras

__all__ = ["build_gaiaxp_mlp", "stack_ensemble"]


def build_gaiaxp_mlp(n_pixels=343, n_extra=1, n_labels=4, hidden=(512, 256, 128),
                     dropout=0.1, activation="gelu"):
    """One ensemble member: a multilayer perceptron with a Gaussian head.

    Parameters
    ----------
    n_pixels : int
        Number of spectral inputs (version 1.1.0: 343 asinh-standardised flux pixels
        followed by 80 whitened principal components; 1.0.0: the 80 components only).
    n_extra : int
        Number of scalar features appended to the flux (the log10 signal-to-noise).
    n_labels : int
        Number of labels; the output has ``2 * n_labels`` columns: the standardised
        means, then the log variances.
    hidden : tuple of int
        Widths of the hidden layers.
    dropout : float
        Dropout rate after each hidden layer (training only).
    activation : str
        Activation of the hidden layers.

    Returns
    -------
    keras.Model
        Input shape ``(batch, n_pixels + n_extra)``, output ``(batch, 2 * n_labels)``.
    """
    keras = import_keras()
    inp = keras.Input(shape=(int(n_pixels) + int(n_extra),), name="features")
    x = inp
    for i, width in enumerate(hidden):
        x = keras.layers.Dense(int(width), activation=activation, name=f"dense_{i}")(x)
        if dropout:
            x = keras.layers.Dropout(float(dropout), name=f"dropout_{i}")(x)
    mean = keras.layers.Dense(int(n_labels), name="mean")(x)
    logvar = keras.layers.Dense(int(n_labels), name="logvar",
                                bias_initializer=keras.initializers.Constant(-2.0))(x)
    out = keras.layers.Concatenate(name="gaussian")([mean, logvar])
    return keras.Model(inp, out, name="gaiaxp_mlp")


def stack_ensemble(members):
    """One Keras model running every member on the same input.

    Returns a model with output shape ``(batch, n_members, 2 * n_labels)``, so a batch
    is one call however many members there are.
    """
    keras = import_keras()
    inp = keras.Input(shape=members[0].input_shape[1:], name="features")
    outs = []
    for i, m in enumerate(members):
        # wrap each member so that their (equal) names do not clash in the graph
        member = keras.Model(m.inputs[0], m.outputs[0], name=f"member_{i}")
        outs.append(keras.layers.Reshape((1, -1), name=f"reshape_{i}")(
            member(inp, training=False)))
    out = outs[0] if len(outs) == 1 else keras.layers.Concatenate(axis=1)(outs)
    return keras.Model(inp, out, name="ensemble")
