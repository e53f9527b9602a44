"""``emotrack predict``."""

from __future__ import annotations

import click


@click.command()
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("source")
@click.option("--out", "out_csv", required=True, type=click.Path(dir_okay=False, allow_dash=True),
              help="CSV to write (live sources: - for standard output).")
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
@click.option("--faces", type=click.Choice(["one", "all"]), default="one", show_default=True,
              help="one: the face the run's preprocessing chose (the largest, or a side); all: every person, "
                   "each with a stable id (track column), one row per frame and person (MTCNN on every frame).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def predict(run_dir, source, out_csv, overlay, checkpoint, no_postprocess, detector, every, min_face, faces, quiet):
    """Predict arousal and valence for every frame of SOURCE with the trained run RUN_DIR.

    SOURCE is a video file, or a live source: a camera (/dev/video0), a stream URL (rtsp://, http://,
    udp://, ...) or - for an MPEG-TS stream on standard input. From a live source each row is written and
    flushed as soon as it is known, without the post-processing chain (it needs the whole sequence);
    the end of the stream or Ctrl-C closes the CSV with every row written.

    Writes a CSV with the columns time, the run's targets (arousal, valence, ...) and face_present, one
    row per frame. Faces are found and cut as the run's training data was preprocessed. The video is
    streamed: any length fits in memory. Frames without a face hold the prediction of the last frame with
    a face (empty before the first face) and are flagged face_present 0; a video without any face is an
    error, and so is a still image. --out and --overlay are checked writable before the video is decoded.
    """
    from pathlib import Path

    from emotrack.apps.live import is_live, predict_live
    from emotrack.apps.predict import predict_video
    from emotrack.media.audio import AudioError
    from emotrack.media.video import VideoError
    from emotrack.preprocess.session import NoFaceError

    live = is_live(source)
    if live and overlay:
        raise click.UsageError("--overlay needs a video file: a live source is not kept; record it to a file and "
                               "predict that")
    if faces == "all" and (live or detector or every):
        raise click.UsageError("--faces all predicts a video file with MTCNN on every frame: it takes no live "
                               "source, --detector or --every")
    if not live and not Path(source).is_file():
        raise click.BadParameter(f"{source} is neither a video file nor a live source (-, /dev/videoN, or a "
                                 f"stream URL such as rtsp://...)", param_hint="'SOURCE'")
    try:
        if live:
            done = predict_live(run_dir, source, out_csv, checkpoint, detector=detector, every=every,
                                min_face=min_face, progress=not quiet and out_csv != "-")
            click.echo(f"{done.rows} frames ({done.faces / max(done.rows, 1):.1%} with a face) written to "
                       f"{out_csv} as they came", err=out_csv == "-")
            return
        if faces == "all":
            from emotrack.apps.people import predict_people

            table = predict_people(run_dir, source, out_csv, checkpoint, postprocess=not no_postprocess,
                                   overlay=overlay, min_face=min_face, progress=not quiet)
            click.echo(f"{table['track'].nunique()} people, {table['time'].nunique()} frames: {len(table)} rows "
                       f"written to {out_csv}" + (f"; overlay: {overlay}" if overlay else ""))
            return
        result = predict_video(run_dir, source, out_csv, checkpoint, postprocess=not no_postprocess,
                               overlay=overlay, detector=detector, every=every, min_face=min_face,
                               progress=not quiet)
    except (VideoError, NoFaceError, AudioError, FileNotFoundError, ValueError) as err:
        raise click.ClickException(str(err)) from err
    table = result.table
    click.echo(f"{len(table)} frames ({table['face_present'].mean():.1%} with a face) written to {out_csv}"
               + (f"; overlay: {overlay}" if overlay else ""))
