"""What a blocked task waits for and who must act: blocked-on, lock reports, candidate
holders, completions, slab look-ups, the wait-for graph."""
