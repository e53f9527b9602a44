"""The input pipeline: TFRecords -> clips (frame subsampling, temporal pooling, label shift and fusion, augmentation) in tf.data."""
