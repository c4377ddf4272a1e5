"""What one verb call reads once and shares: the snapshot (ps and stacks), the port
that answers printed stack words from it, its facts, the task-view check."""
