"""Applications built on the library (the main job's demo); the CLI gives each a command."""
