"""The stage contract between preprocessing and training: TFRecord sessions and the manifest, written and read here only."""
