"""``emotrack synth``."""

from __future__ import annotations

import click


@click.command()
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Corpus folder to write.")
@click.option("--sessions", default=12, show_default=True, type=click.IntRange(3), help="Sessions (one subject each).")
@click.option("--seconds", default=40.0, show_default=True, type=click.FloatRange(1.0), help="Length of each session.")
@click.option("--fps", default=10.0, show_default=True, type=click.FloatRange(1.0), help="Video frame rate.")
@click.option("--seed", default=0, show_default=True, type=int, help="Same seed, same corpus.")
@click.option("--delay", "annotator_delay_s", default=2.0, show_default=True, type=click.FloatRange(0.0),
              help="Seconds by which the ratings lag the face (annotator delay).")
@click.option("--rater-noise", default=0.05, show_default=True, type=click.FloatRange(0.0),
              help="Standard deviation of the raters' noise.")
@click.option("--width", default=160, show_default=True, type=click.IntRange(64), help="Frame width.")
@click.option("--height", default=128, show_default=True, type=click.IntRange(64), help="Frame height.")
def synth(out_dir, sessions, seconds, fps, seed, annotator_delay_s, rater_noise, width, height):
    """Write a synthetic audiovisual emotion corpus in the generic layout.

    Per session: a video with a 16 kHz audio track (videos/<session>.mp4) and ratings at 10 Hz
    (ratings/<session>.csv: time, arousal, valence, liking); partitions.csv assigns distinct
    subjects to train, devel and test.
    """
    from emotrack.synth.corpus import synthesize_corpus

    summary = synthesize_corpus(out_dir, sessions=sessions, seconds=seconds, fps=fps, seed=seed,
                                annotator_delay_s=annotator_delay_s, rater_noise=rater_noise,
                                width=width, height=height)
    click.echo(f"wrote {len(summary['sessions'])} sessions to {summary['root']}")
