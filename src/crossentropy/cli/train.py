"""``crossentropy train``: a classifier trained with cross-entropy and with squared error, side by side."""

from __future__ import annotations

import argparse
import math
import sys
from typing import Any

from .. import InputError
from ..learn import MAX_SEED
from .arguments import Commands, add_format, add_precision, at_least_one, int_in, number, positive_int
from .output import plot_module, print_note, print_tables, write_figure

__all__ = ["HEADERS", "LEGEND", "register", "run"]

LEGEND = (
    "CE: the model trained with cross-entropy; MSE: the same model trained with squared error. Per epoch, "
    "each one's training loss (CE: cross-entropy, in nats; MSE: squared error of the probabilities, sq. err., "
    "which has no unit), its cross-entropy on the test rows (in nats) and its test accuracy (acc.)."
)
"""What the columns mean, printed before the table."""

HEADERS = ["epoch", "CE train\n(nats)", "CE test\n(nats)", "CE acc.", "MSE train\n(sq. err.)",
           "MSE test\n(nats)", "MSE acc."]  # fmt: skip
"""Two lines at most, so that the table fits 80 columns."""


def register(commands: Commands) -> None:
    """Add the ``train`` command."""
    trainer = commands.add_parser(
        "train",
        help="train a classifier with cross-entropy and with squared error, side by side",
        epilog="examples:\n  crossentropy train --dataset digits --plot curves.png\n"
        "  crossentropy train --model softmax --init saturated --epochs 100 --format json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    trainer.add_argument(
        "--dataset",
        choices=["breast_cancer", "digits", "iris", "wine"],
        default="digits",
        help="a data set shipped with scikit-learn (default digits)",
    )
    trainer.add_argument(
        "--model",
        choices=["logistic", "softmax", "mlp"],
        default="softmax",
        help="logistic (binary data only), softmax regression, or a one-hidden-layer MLP",
    )
    trainer.add_argument("--epochs", type=positive_int, default=60, help="epochs (default 60)")
    trainer.add_argument("--lr", type=number, default=0.5, help="learning rate (default 0.5)")
    trainer.add_argument("--batch-size", type=at_least_one, default=None, help="mini-batch size (default: full batch)")
    trainer.add_argument("--hidden", type=at_least_one, default=32, help="hidden units of the MLP (default 32)")
    trainer.add_argument(
        "--init",
        choices=["random", "saturated"],
        default="random",
        help="saturated: start from confidently wrong weights",
    )
    trainer.add_argument("--target", type=number, default=0.9, help="test accuracy to reach (default 0.9)")
    trainer.add_argument(
        "--seed", type=int_in(0, MAX_SEED), default=0, help="seed of the split and the weights (default 0)"
    )
    trainer.add_argument(
        "--every", type=at_least_one, default=None, help="print every N-th epoch (default: about 20 rows)"
    )
    trainer.add_argument(
        "--plot", metavar="FILE", help="test accuracy, test cross-entropy and gradient size per epoch into FILE"
    )
    add_format(trainer)
    add_precision(trainer)
    trainer.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Train with cross-entropy and with squared error; print the curves side by side."""
    from ..learn import load_dataset, train

    if not 0 <= args.target <= 1:
        raise InputError(f"--target is a test accuracy in [0, 1], got {args.target:g}")
    X_train, X_test, y_train, y_test = load_dataset(args.dataset, seed=args.seed)
    histories = {
        loss: train(
            X_train,
            y_train,
            X_test,
            y_test,
            model=args.model,
            loss=loss,
            epochs=args.epochs,
            lr=args.lr,
            batch_size=args.batch_size,
            hidden=args.hidden,
            init=args.init,
            seed=args.seed,
        )
        for loss in ("ce", "mse")
    }
    ce_h, mse_h = histories["ce"], histories["mse"]
    every = args.every or max(1, args.epochs // 20)
    epochs = sorted(set(range(0, args.epochs + 1, every)) | {args.epochs})
    rows = [
        [
            e,
            ce_h.train_loss[e],
            ce_h.test_cross_entropy[e],
            ce_h.test_accuracy[e],
            mse_h.train_loss[e],
            mse_h.test_cross_entropy[e],
            mse_h.test_accuracy[e],
        ]
        for e in epochs
    ]
    ratio = ce_h.gradient_norm[0] / mse_h.gradient_norm[0] if mse_h.gradient_norm[0] else math.inf

    def reached(h: Any) -> Any:
        epoch = h.epochs_to(args.target)
        return f"not in {args.epochs}" if epoch is None else epoch

    summary: list[list[Any]] = [
        [f"epochs to {args.target:.0%} test accuracy", reached(ce_h), reached(mse_h)],
        ["final test accuracy", ce_h.test_accuracy[-1], mse_h.test_accuracy[-1]],
        ["final test cross-entropy (nats)", ce_h.test_cross_entropy[-1], mse_h.test_cross_entropy[-1]],
        ["gradient norm at the start", ce_h.gradient_norm[0], mse_h.gradient_norm[0]],
    ]
    title = f"{args.model} on {args.dataset} ({args.init} start, lr {args.lr:g})"
    if args.plot:
        _save_training_plot(args.plot, histories, title)
    payload = {
        "dataset": args.dataset,
        "model": args.model,
        "init": args.init,
        "lr": args.lr,
        "epochs": args.epochs,
        "target_accuracy": args.target,
        "epochs_to_target": {"ce": ce_h.epochs_to(args.target), "mse": mse_h.epochs_to(args.target)},
        "initial_gradient_norm_ratio": ratio,
        "history": {k: h.as_dict() for k, h in histories.items()},
    }
    print_note(LEGEND, args.format)
    print_tables(
        [
            (title, HEADERS, rows),
            ("summary (CE: trained with cross-entropy; MSE: with squared error)", ["", "CE", "MSE"], summary),
        ],
        args.format,
        payload,
        args.precision,
    )
    if args.format == "table":
        print(
            f"at the start, the squared-error gradient is {ratio:.3g} times smaller than cross-entropy's",
            file=sys.stderr,
        )
    return 0


def _save_training_plot(path: str, histories: dict[str, Any], title: str) -> None:
    """The two runs side by side: test accuracy, test cross-entropy and the gradient norm, per epoch."""
    plot = plot_module()
    from matplotlib.figure import Figure

    named = {
        "trained with cross-entropy": histories["ce"].as_dict(),
        "trained with squared error": histories["mse"].as_dict(),
    }
    fig = Figure(figsize=(15, 4.4), layout="constrained")
    a, b, c = fig.subplots(1, 3)
    plot.learning_curves(named, metric="test_accuracy", title="Test accuracy", ax=a)
    plot.learning_curves(named, metric="test_cross_entropy", title="Test cross-entropy", ax=b)
    plot.learning_curves(named, metric="gradient_norm", title="Size of the gradient (log scale)", log=True, ax=c)
    fig.suptitle(f"Cross-entropy versus squared error: {title}")
    write_figure(fig, path)
