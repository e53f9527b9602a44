"""Training: a resolved config and preprocessed data -> a run folder (checkpoints, history, resume, tf.distribute), and 2D pre-training."""
