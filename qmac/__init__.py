"""qmac: bit-exact systolic MAC arrays for integer-only quantized inference."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("qmac")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"
