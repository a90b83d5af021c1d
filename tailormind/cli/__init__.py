"""The ``tailormind`` command line: one sub-command group per stage, all calling the library."""
