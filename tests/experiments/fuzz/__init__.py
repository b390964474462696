"""Bad input, fuzzed: every malformed spec, override or file ends with exit code 2 and one
line on stderr that names the problem; never a traceback, never a started Ray."""
