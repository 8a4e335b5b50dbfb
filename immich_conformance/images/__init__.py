"""Container images the project builds itself, with no registry: root filesystems packed as image archives."""
