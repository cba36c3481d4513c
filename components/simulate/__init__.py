"""Traffic replay against a stack as planned (`modelyard simulate`): docs/simulate.md."""
