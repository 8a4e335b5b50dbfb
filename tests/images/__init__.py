"""The project's own images, the edge stand-in component and the ci overlay."""
