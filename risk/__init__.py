"""Pure risk and accounting logic: domain types, pre-trade gate, book."""
