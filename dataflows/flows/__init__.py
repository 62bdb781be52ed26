"""The three Bytewax dataflows (trading, gateway, persist) and their thin step shims."""
