"""taly: the ops CLI of the Taly platform."""

__version__ = "0.1.0"
