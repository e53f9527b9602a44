"""Media decoding and encoding: video frames and audio samples with their time stamps, nothing else."""
