"""A stand-in PCA9685 chip on a stand-in I2C bus: the hardware edge of the Donkey backend.

Everything above the bus is real: ``adafruit_pca9685.PCA9685`` and
``adafruit_bus_device.I2CDevice`` talk to this object exactly as to ``busio.I2C`` on the
car (``try_lock``/``unlock``, ``writeto``, ``readfrom_into``, ``writeto_then_readfrom``,
the signatures of Adafruit Blinka's ``busio.I2C``). The chip side follows the NXP
PCA9685 register map used by ``adafruit_pca9685.py``: MODE1 at 0x00, PRESCALE at 0xFE,
``LEDn_ON_L`` at ``0x06 + 4n`` (ON low/high, OFF low/high, auto-increment). Each write
to a channel's registers is recorded as a 12-bit pulse (the OFF count) in ``pulses``.
"""

from __future__ import annotations

import threading
import time

LED0_ON_L = 0x06
PRESCALE = 0xFE


class RecordingPca9685Bus:
    """An I2C bus with one PCA9685 at ``address`` (default 0x40)."""

    def __init__(self, address: int = 0x40) -> None:
        self.address = address
        self.memory = bytearray(256)
        self._pointer = 0
        self._lock = threading.Lock()
        self.pulses: list[tuple[int, int, float]] = []  # (channel, ticks 0..4095, monotonic time)

    # busio.I2C interface ---------------------------------------------------------
    def try_lock(self) -> bool:
        """Take the bus (False when another user holds it)."""
        return self._lock.acquire(blocking=False)

    def unlock(self) -> None:
        """Release the bus."""
        self._lock.release()

    def _check(self, address: int) -> None:
        if address != self.address:
            raise OSError(19, "No such device")  # what the bus says for an empty address

    def writeto(self, address: int, buffer, *, start: int = 0, end: int | None = None) -> None:
        """Register pointer then data (auto-increment); an empty write is a probe."""
        self._check(address)
        data = bytes(buffer[start:end])
        if not data:
            return  # a probe
        self._pointer = data[0]
        self._write(data[1:])

    def readfrom_into(self, address: int, buffer, *, start: int = 0, end: int | None = None) -> None:
        """Read from the register pointer on (OSError for an address with no chip)."""
        self._check(address)
        end = len(buffer) if end is None else end
        for i in range(start, end):
            buffer[i] = self.memory[self._pointer]
            self._pointer = (self._pointer + 1) % 256

    def writeto_then_readfrom(self, address: int, buffer_out, buffer_in, *, out_start: int = 0,
                              out_end: int | None = None, in_start: int = 0, in_end: int | None = None) -> None:
        """Set the register pointer, then read (a repeated-start transfer)."""
        self.writeto(address, bytes(buffer_out), start=out_start, end=out_end)
        self.readfrom_into(address, buffer_in, start=in_start, end=in_end)

    # the chip --------------------------------------------------------------------
    def _write(self, data: bytes) -> None:
        first = self._pointer
        for byte in data:
            self.memory[self._pointer] = byte
            self._pointer = (self._pointer + 1) % 256
        touched = {(r - LED0_ON_L) // 4 for r in range(first, first + len(data))
                   if LED0_ON_L <= r < LED0_ON_L + 64}
        for channel in sorted(touched):
            base = LED0_ON_L + 4 * channel
            off = self.memory[base + 2] | (self.memory[base + 3] << 8)
            self.pulses.append((channel, off & 0x0FFF if off != 0x1000 else 0, time.monotonic()))

    @property
    def prescale(self) -> int:
        """The PRESCALE register: 25 MHz / (4096 * frequency) - 1."""
        return self.memory[PRESCALE]

    def pulse(self, channel: int) -> int | None:
        """The last pulse written to ``channel`` (None: never written)."""
        return next((t for c, t, _ in reversed(self.pulses) if c == channel), None)

    def pulses_of(self, channel: int) -> list[int]:
        """Every pulse written to ``channel``, in order."""
        return [t for c, t, _ in self.pulses if c == channel]
