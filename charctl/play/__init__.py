"""Using a trained policy: open its file, evaluate it, play it back in a window or a video, plot learning curves."""
