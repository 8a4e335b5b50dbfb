"""Step definitions: thin functions that call the target and the clients."""
