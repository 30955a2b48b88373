"""Tools the model can call; each behind the `Tool` protocol in `base.py`."""
