"""Reference data for training potentials: the frame file format and the water generator."""

from openmmnnp.data.frames import Frames, load_frames, save_frames

__all__ = ["Frames", "load_frames", "save_frames"]
