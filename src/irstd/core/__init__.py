"""The leaf layer: helpers every other layer may use; imports nothing from irstd above it."""
