"""Driving data and autopilot training for the car client.

* :mod:`car_client.training.tub` — Donkey Car "tub v2" datastore (writer and reader);
* :mod:`car_client.training.record` — drive the simulator with a noisy expert and record a tub;
* :mod:`car_client.training.model` — Donkey-style CNNs (linear and categorical);
* :mod:`car_client.training.train` — train a model from tubs, export ``.keras``/``.tflite``;
* :mod:`car_client.training.deepracer_export` — package a model as a DeepRacer archive;
* :mod:`car_client.training.demo_models` — build the demo models from nothing (cached);
* :mod:`car_client.training.commands` — the ``record``, ``train`` and ``export-deepracer``
  sub-commands of ``car-client``.

TensorFlow is imported lazily inside the functions that need it.
"""
