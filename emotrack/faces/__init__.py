"""Faces: MTCNN detection, tracking through a video, and the crop sets cut from a face box."""
