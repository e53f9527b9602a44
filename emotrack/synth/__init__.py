"""A synthetic corpus whose faces and voice carry known arousal and valence, for the demo and the tests."""
