"""An example decoding-lab plug-in package: one search and its config option."""
