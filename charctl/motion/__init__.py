"""Motion clips: BVH files, the DeepMimic importer, the Clip sampler and retargeting."""
