"""The receipt printer: ESC/POS programs (pure), status bits (pure), and the device that prints them on a URL.

| module | job |
|---|---|
| ``text``      | printable text, columns (zh = 2), wrapping and ``(left, right)`` pairs (pure) |
| ``program``   | laid-out lines → one ESC/POS byte program: init, text, GB18030 Chinese mode or raster, cut (pure) |
| ``status``    | ``DLE EOT`` requests and their answers → ``PrinterStatus`` (pure) |
| ``raster``    | a line of text → a ``GS v 0`` raster image (Pillow, a CJK font, python-escpos) |
| ``transport`` | printer URLs and the byte pipes behind them (pyserial, python-escpos ``Network``/``Usb``) |
| ``device``    | ``ReceiptPrinter``: status, print with checks before and after, one-sentence ``PrinterError`` |

See docs/printer.md.
"""
