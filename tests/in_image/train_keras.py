"""Inside the image: train a small Keras model on a learnable synthetic task and print the result
as JSON. argv[1] is the device to use ("CPU" or "GPU")."""

import json
import sys

import numpy as np
import tensorflow as tf

device = sys.argv[1] if len(sys.argv) > 1 else "CPU"
devices = tf.config.list_logical_devices(device)
if not devices:
    print(json.dumps({"error": f"no {device} device", "visible": [d.name for d in tf.config.list_logical_devices()]}))
    sys.exit(2)

rng = np.random.default_rng(0)
x = rng.normal(size=(2000, 8)).astype("float32")
y = (x[:, 0] + 0.5 * x[:, 1] - x[:, 2] > 0).astype("float32")
with tf.device(devices[0].name):
    tf.keras.utils.set_random_seed(0)
    model = tf.keras.Sequential([
        tf.keras.layers.Dense(16, activation="relu", input_shape=(8,)),
        tf.keras.layers.Dense(1, activation="sigmoid"),
    ])
    model.compile(optimizer=tf.keras.optimizers.Adam(0.01), loss="binary_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, epochs=8, batch_size=64, verbose=0)
    weights_device = model.weights[0].device
print(json.dumps({
    "device": devices[0].name,
    "weights_device": weights_device,
    "first_loss": history.history["loss"][0],
    "last_loss": history.history["loss"][-1],
    "accuracy": history.history["accuracy"][-1],
}))
