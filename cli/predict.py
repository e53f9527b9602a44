"""``emotrack predict``."""

from __future__ import annotations

import click


@click.command()
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("video", type=click.Path(exists=True, dir_okay=False))
@click.option("--out", "out_csv", required=True, type=click.Path(dir_okay=False), help="CSV to write.")
@click.option("--overlay", type=click.Path(dir_okay=False),
              help="Also write this video (H.264 MP4): the input with the face box and an arousal-valence plane.")
@click.option("--checkpoint", default="best.keras", show_default=True, help="Checkpoint file in the run folder.")
@click.option("--no-postprocess", is_flag=True, help="Skip the post-processing chain fitted on devel.")
@click.option("--detector", type=click.Choice(["tracker", "mtcnn"]),
              help="How to find faces. tracker: MTCNN every few frames, tracking in between; mtcnn: MTCNN on every "
                   "frame (slow). Default: as the run's training data was preprocessed.")
@click.option("--every", type=click.IntRange(min=1),
              help="tracker: look for the face afresh every N frames. Default: the run's.")
@click.option("--min-face", type=click.FloatRange(0, 1, min_open=True),
              help="tracker: smallest face, as a fraction of the frame's shorter side. Default: the run's.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def predict(run_dir, video, out_csv, overlay, checkpoint, no_postprocess, detector, every, min_face, quiet):
    """Predict arousal and valence for every frame of VIDEO with the trained run RUN_DIR.

    Writes a CSV with the columns time, the run's targets (arousal, valence, ...) and face_present, one
    row per frame. Faces are found and cut as the run's training data was preprocessed. The video is
    streamed: any length fits in memory. Frames without a face hold the prediction of the last frame with
    a face (empty before the first face) and are flagged face_present 0; a video without any face is an
    error, and so is a still image. --out and --overlay are checked writable before the video is decoded.
    """
    from emotrack.apps.predict import predict_video
    from emotrack.media.audio import AudioError
    from emotrack.media.video import VideoError
    from emotrack.preprocess.session import NoFaceError

    try:
        result = predict_video(run_dir, video, out_csv, checkpoint, postprocess=not no_postprocess,
                               overlay=overlay, detector=detector, every=every, min_face=min_face,
                               progress=not quiet)
    except (VideoError, NoFaceError, AudioError, FileNotFoundError, ValueError) as err:
        raise click.ClickException(str(err)) from err
    table = result.table
    click.echo(f"{len(table)} frames ({table['face_present'].mean():.1%} with a face) written to {out_csv}"
               + (f"; overlay: {overlay}" if overlay else ""))
