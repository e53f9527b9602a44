"""``emotrack export``."""

from __future__ import annotations

import json

import click


@click.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--format", "fmt", required=True, type=click.Choice(["keras", "savedmodel", "tflite"]),
              help="keras: a copy of the checkpoint; savedmodel: a standalone TensorFlow SavedModel; "
                   "tflite: a TFLite file for a fixed time length.")
@click.option("--out", type=click.Path(), help="File (folder for savedmodel) to write "
              "[default: RUN_DIR/export/<checkpoint>.keras|.savedmodel|.tflite].")
@click.option("--checkpoint", default="best.keras", show_default=True, help="Checkpoint file in the run folder.")
@click.option("--time-steps", type=int, help="tflite: input steps per call [default: the run's clip length "
              "data.window over the temporal pooling factor, or the model's own fixed length].")
@click.option("--overwrite", is_flag=True, help="Replace an existing output.")
def export(run_dir, fmt, out, checkpoint, time_steps, overwrite):
    """Export the model of the trained run RUN_DIR for use outside emotrack.

    Writes the model and, beside it, OUT.json: the run's input contract (input names and shapes,
    pixel range, targets in output order, temporal pooling, annotator delay, face preprocessing
    options and the post-processing chain), which says how to feed a video to the model and read
    its predictions.

    \b
    keras       the .keras checkpoint (load with emotrack.models.load_model)
    savedmodel  tf.saved_model.load(OUT).signatures["serving_default"]; free time length
    tflite      one clip of a fixed time length (--time-steps), batch 1; runs on TFLite's
                built-in ops where it can (3D pooling is rebuilt from 2D pooling) and is
                checked against the Keras model on a random clip before it is written

    Nothing is replaced without --overwrite, and an export that fails leaves the old output as it was.
    """
    from emotrack.apps.export import contract_path, export_run

    try:
        path = export_run(run_dir, fmt, out, checkpoint, time_steps, overwrite)
    except (FileNotFoundError, FileExistsError, KeyError, ValueError) as err:
        raise click.ClickException(str(err)) from err
    click.echo(f"{fmt} model written to {path} (input contract: {contract_path(path)})")
    if fmt == "tflite" and json.loads(contract_path(path).read_text())["tflite"]["select_tf_ops"]:
        click.echo("note: the file uses TensorFlow Select ops; run it with a TFLite runtime that has the "
                   "Flex delegate")
