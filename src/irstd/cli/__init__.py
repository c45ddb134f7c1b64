"""The ``irstd`` command line: thin wrappers that parse options and call the library."""
