"""A simulated 1/18 car on real DeepRacer tracks.

One job per module:

* :mod:`~car_client.sim.tracks` - track geometry (waypoints, progress, borders, start line);
* :mod:`~car_client.sim.dynamics` - kinematic bicycle with speed, steering and grip limits;
* :mod:`~car_client.sim.raster` - the track drawn once as a top-down image;
* :mod:`~car_client.sim.camera` - the camera image a model sees (inverse perspective lookup);
* :mod:`~car_client.sim.world` - one car on one track: off-track resets and lap timing;
* :mod:`~car_client.sim.loop` - camera -> pilot -> car at the camera rate;
* :mod:`~car_client.sim.vehicle` - :class:`SimulatedVehicle`, the daemon's view of it all;
* :mod:`~car_client.sim.plot` - a PNG of the driven line;
* :mod:`~car_client.sim.cli` - ``car-client drive``.

Nothing here imports TensorFlow at module level.
"""
