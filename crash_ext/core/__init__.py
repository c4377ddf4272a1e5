"""The ground every floor stands on: errors, the Port and its optional capabilities,
user words, records, the one cache home, JSON text.  Reads no kernel itself."""
