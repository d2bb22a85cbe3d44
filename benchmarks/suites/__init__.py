"""The eight measurements of issue 7, one module each (stall and memory are recorded by the others)."""
