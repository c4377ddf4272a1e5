"""What the code says: x86-64 dataflow (flow, solver), argument recovery (args) and
the locks a function holds when it calls (holds)."""
