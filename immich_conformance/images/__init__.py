"""Container images the project builds itself, with no registry: root filesystems packed as image archives.

- ``build``: ``build_images(names, cache_dir, progress) -> {name: PackedImage}``, cached by input hash;
- ``recipes``: what each image holds and runs, ``image_refs()``;
- ``oci``: ``pack_image(rootfs, ref, ImageConfig, out)``, archives for ``ctr images import`` and ``docker load``;
- ``rootfs``, ``python_env``: debootstrap/apt in a chroot; the project modules and Python packages an image needs;
- ``edge_material``: ``prepare_edge_material(component_dir)`` for stack/components/edge-standin;
- ``edge_pod``: the edge stand-in's entry point in a pod.

Command line: ``python -m immich_conformance.images {build,refs,prepare-edge}``. This package's ``__init__`` imports
nothing: the edge-standin image carries ``edge_pod`` without the build machinery.
"""
