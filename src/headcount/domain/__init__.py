"""Pure rules and value types. Nothing here performs I/O, so its tests run in milliseconds."""
