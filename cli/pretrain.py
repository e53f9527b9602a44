"""``emotrack pretrain``."""

from __future__ import annotations

import click


@click.command()
@click.option("--images", "images_root", required=True, type=click.Path(exists=True, file_okay=False),
              help="A labelled face-image set in the RAF-DB layout (EmoLabel/, Image/aligned/).")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Run folder to create.")
@click.option("--backbone", default="vgg16", show_default=True,
              type=click.Choice(["vgg11", "vgg11_bn", "vgg16", "vgg16_bn", "resnet50"]))
@click.option("--weights", help="Starting weights: 'imagenet' or a .weights.h5 file (default: random).")
@click.option("--fine-tune-from", default="all", show_default=True,
              type=click.Choice(["conv2_1", "conv3_1", "conv4_1", "conv5_1", "all"]),
              help="First block that is trained; earlier blocks stay frozen.")
@click.option("--size", nargs=2, type=int, default=(100, 80), show_default=True, help="Input height and width.")
@click.option("--preprocessing", "input_preprocessing", default="scale", show_default=True,
              type=click.Choice(["scale", "caffe"]),
              help="How the pixels meet the backbone: divided by 255 (the Teixeira networks) or converted as for "
                   "ImageNet's ResNet-50, RGB -> BGR minus the channel means (the tzirakis2017-visual network).")
@click.option("--pooling", default="flatten", show_default=True, type=click.Choice(["flatten", "avg", "max"]),
              help="Pooling of the backbone's feature map before the classifier (avg: as tzirakis2017-visual).")
@click.option("--bn-momentum", "batch_norm_momentum", type=click.FloatRange(0, 1, max_open=True),
              help="Moving-average momentum of the backbone's batch normalisation (default: the backbone's own).")
@click.option("--epochs", default=20, show_default=True, type=click.IntRange(1))
@click.option("--batch-size", default=16, show_default=True, type=click.IntRange(1))
@click.option("--lr", "learning_rate", default=1e-5, show_default=True, type=float)
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--overwrite", is_flag=True, help="Replace a run already in --out.")
def pretrain(images_root, out_dir, backbone, weights, fine_tune_from, size, input_preprocessing, pooling,
             batch_norm_momentum, epochs, batch_size, learning_rate, seed, overwrite):
    """Pre-train a 2D backbone on the seven basic emotions (Teixeira 2021, Sec. 4.3).

    Writes model.keras and backbone.weights.h5; pass the latter as
    `--set model.options.weights=RUN/backbone.weights.h5` to a teixeira2021-vgg16-lstm or
    teixeira2021-i3d experiment to fine-tune or inflate it, or, for a resnet50 pre-trained with
    `--preprocessing caffe --pooling avg`, to a tzirakis2017-visual experiment.
    """
    from emotrack.training.pretrain import DatasetLayoutError, pretrain_2d

    try:
        report = pretrain_2d(images_root, out_dir, backbone=backbone, weights=weights, fine_tune_from=fine_tune_from,
                             input_shape=(*size, 3), input_preprocessing=input_preprocessing, pooling=pooling,
                             batch_norm_momentum=batch_norm_momentum, epochs=epochs, batch_size=batch_size,
                             learning_rate=learning_rate, seed=seed, overwrite=overwrite)
    except (DatasetLayoutError, FileExistsError, ValueError) as err:
        raise click.ClickException(str(err)) from err
    accuracy = report["test_accuracy"]
    click.echo(f"{report['train_images']} training images; test accuracy "
               f"{'n/a' if accuracy is None else f'{accuracy:.3f}'}; backbone: {report['backbone_weights']}")
