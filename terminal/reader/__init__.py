"""Serial card reader: framing protocol (pure) and the pyserial device driver."""
