"""``emotrack synth``."""

from __future__ import annotations

import click

from emotrack.synth.images import IMAGE_LAYOUTS
from emotrack.synth.layouts import LAYOUTS, RELEASE_RATES


@click.command()
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Folder to write.")
@click.option("--layout", default="generic", show_default=True, type=click.Choice(sorted(LAYOUTS)),
              help="Write the corpus in this built-in spec's release layout (see `emotrack specs`).")
@click.option("--images", type=click.Choice(IMAGE_LAYOUTS), default=None,
              help="Write a labelled face-image set in this release layout instead of a corpus.")
@click.option("--count", default=20, show_default=True, type=click.IntRange(3),
              help="--images: images per class (one per subject).")
@click.option("--sessions", default=12, show_default=True, type=click.IntRange(3), help="Sessions (one subject each).")
@click.option("--seconds", default=40.0, show_default=True, type=click.FloatRange(1.0), help="Length of each session.")
@click.option("--fps", default=None, type=click.FloatRange(1.0),
              help="Video frame rate [default: the layout's release rate; generic: 10].")
@click.option("--seed", default=0, show_default=True, type=int, help="Same seed, same corpus.")
@click.option("--delay", "annotator_delay_s", default=2.0, show_default=True, type=click.FloatRange(0.0),
              help="Seconds by which the ratings lag the face (annotator delay).")
@click.option("--rater-noise", default=0.05, show_default=True, type=click.FloatRange(0.0),
              help="Standard deviation of the raters' noise.")
@click.option("--width", default=160, show_default=True, type=click.IntRange(64), help="Frame width.")
@click.option("--height", default=128, show_default=True, type=click.IntRange(64), help="Frame height.")
def synth(out_dir, layout, images, count, sessions, seconds, fps, seed, annotator_delay_s, rater_noise, width, height):
    """Write a synthetic audiovisual emotion corpus, or a labelled face-image set.

    By default the generic layout: per session a video with a 16 kHz audio track
    (videos/<session>.mp4) and ratings at 10 Hz (ratings/<session>.csv: time, arousal, valence,
    liking); partitions.csv assigns distinct subjects to train, devel and test. --layout writes the
    same sessions as a built-in spec's release lays its corpus out (file names, formats, rating
    rates, partitions, test sets without labels). --images fer2013|rafdb writes a face-image set
    with seven expression classes in FER2013's or RAF-DB's release layout.
    """
    if images:
        from emotrack.synth.images import synthesize_images

        made = synthesize_images(images, out_dir, count=count, seed=seed)
        click.echo(f"wrote {made['images']} {images} images ({count} per class) to {made['path']}")
        return
    if layout == "generic":
        from emotrack.synth.corpus import synthesize_corpus

        summary = synthesize_corpus(out_dir, sessions=sessions, seconds=seconds, fps=fps or RELEASE_RATES["generic"][0],
                                    seed=seed, annotator_delay_s=annotator_delay_s, rater_noise=rater_noise,
                                    width=width, height=height)
        click.echo(f"wrote {len(summary['sessions'])} sessions to {summary['root']}")
        return
    from emotrack.synth.layouts import synthesize_layout

    try:
        made = synthesize_layout(layout, out_dir, sessions=sessions, seconds=seconds, seed=seed, fps=fps,
                                 annotator_delay_s=annotator_delay_s, rater_noise=rater_noise, width=width,
                                 height=height)
    except ValueError as err:
        raise click.UsageError(str(err)) from err
    click.echo(f"wrote {len(made['sessions'])} sessions in the {layout} layout ({made['fps']:g} fps) to {made['root']}")
