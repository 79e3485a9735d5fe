"""Fleet tests: the /api/fleet and /api/car HTTP API and the /car Socket.IO namespace."""
