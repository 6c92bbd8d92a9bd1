"""Worker code for the workflows translated from the seed tutorial (one module per scenario)."""
