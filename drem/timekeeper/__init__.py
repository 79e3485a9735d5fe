"""Live race control: the server-held race clock, lap capture from operator, car and timer."""
