"""The `phoenix` and `kubectl phoenix` command lines."""
