"""``emotrack predict``."""

from __future__ import annotations

import click


@click.command()
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("video", type=click.Path(exists=True, dir_okay=False))
@click.option("--out", "out_csv", required=True, type=click.Path(dir_okay=False), help="CSV to write.")
@click.option("--checkpoint", default="best.keras", show_default=True, help="Checkpoint file in the run folder.")
@click.option("--no-postprocess", is_flag=True, help="Skip the post-processing chain fitted on devel.")
def predict(run_dir, video, out_csv, checkpoint, no_postprocess):
    """Predict arousal and valence for every frame of VIDEO with the trained run RUN_DIR.

    Writes a CSV with the columns time, arousal, valence, face_present (one row per frame).
    """
    from ..predict import predict_video
    from ..preprocess import NoFaceError
    from ..video import VideoError

    try:
        table = predict_video(run_dir, video, out_csv, checkpoint, postprocess=not no_postprocess)
    except (VideoError, NoFaceError, FileNotFoundError, ValueError) as err:
        raise click.ClickException(str(err)) from err
    click.echo(f"{len(table)} frames written to {out_csv}")
