"""The cross-entropy versus squared-error trainers and `crossentropy train`."""

from __future__ import annotations

import json

import numpy as np
import pytest

import crossentropy as ce
from crossentropy import learn
from crossentropy.cli import main

pytest.importorskip("sklearn")


def _model(kind, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(12, 5))
    y = rng.integers(0, 2 if kind == "logistic" else 3, 12)
    y[:3] = [0, 1, 1 if kind == "logistic" else 2]
    net = learn._init(kind, 5, 2 if kind == "logistic" else 3, 4, rng)
    return net, X, y


def _flatten(net):
    return np.concatenate([np.concatenate([W.ravel(), b]) for W, b in net.layers])


def _assign(net, theta):
    layers, i = [], 0
    for W, b in net.layers:
        Wn = theta[i : i + W.size].reshape(W.shape)
        i += W.size
        bn = theta[i : i + b.size]
        i += b.size
        layers.append((Wn, bn))
    net.layers = layers


@pytest.mark.parametrize("kind", ["logistic", "softmax", "mlp"])
@pytest.mark.parametrize("loss", ["ce", "mse"])
def test_gradients_match_finite_differences(kind, loss):
    net, X, y = _model(kind)
    analytic = np.concatenate([np.concatenate([gW.ravel(), gb]) for gW, gb in learn.gradients(net, X, y, loss)])
    theta = _flatten(net)
    numeric = np.zeros_like(theta)
    for i in range(theta.size):
        step = np.zeros_like(theta)
        step[i] = 1e-6
        _assign(net, theta + step)
        up = learn.loss_value(net, X, y, loss)
        _assign(net, theta - step)
        down = learn.loss_value(net, X, y, loss)
        numeric[i] = (up - down) / 2e-6
    _assign(net, theta)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("kind", ["logistic", "softmax", "mlp"])
@pytest.mark.parametrize("loss", ["ce", "mse"])
def test_gradients_match_torch_autograd(kind, loss):
    torch = pytest.importorskip("torch")
    net, X, y = _model(kind, seed=1)
    params = [(torch.tensor(W, requires_grad=True), torch.tensor(b, requires_grad=True)) for W, b in net.layers]
    h = torch.tensor(X)
    for i, (W, b) in enumerate(params):
        h = h @ W + b
        if i < len(params) - 1:
            h = torch.tanh(h)
    yt = torch.tensor(y)
    if kind == "logistic":
        z = h[:, 0]
        if loss == "ce":
            value = torch.nn.functional.binary_cross_entropy_with_logits(z, yt.double())
        else:
            value = ((torch.sigmoid(z) - yt.double()) ** 2).mean()
    elif loss == "ce":
        value = torch.nn.functional.cross_entropy(h, yt)
    else:
        value = ((torch.softmax(h, -1) - torch.nn.functional.one_hot(yt, 3).double()) ** 2).sum(-1).mean()
    value.backward()
    for (gW, gb), (W, b) in zip(learn.gradients(net, X, y, loss), params, strict=True):
        np.testing.assert_allclose(gW, W.grad.numpy(), rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(gb, b.grad.numpy(), rtol=1e-10, atol=1e-14)


def test_cross_entropy_reaches_90_percent_in_fewer_epochs_on_digits():
    X_train, X_test, y_train, y_test = learn.load_dataset("digits", seed=0)
    runs = {
        loss: learn.train(X_train, y_train, X_test, y_test, model="softmax", loss=loss, epochs=60, lr=0.5, seed=0)
        for loss in ("ce", "mse")
    }
    ce_epochs, mse_epochs = runs["ce"].epochs_to(0.9), runs["mse"].epochs_to(0.9)
    print("epochs to 90%:", ce_epochs, mse_epochs)
    assert ce_epochs is not None
    assert mse_epochs is None or ce_epochs < mse_epochs


@pytest.mark.slow
def test_saturated_start_squared_error_gradient_is_orders_of_magnitude_smaller():
    X_train, X_test, y_train, y_test = learn.load_dataset("digits", seed=0)
    runs = {
        loss: learn.train(
            X_train, y_train, X_test, y_test, model="softmax", loss=loss, epochs=100, lr=0.5, init="saturated", seed=0
        )
        for loss in ("ce", "mse")
    }
    ratio = runs["ce"].gradient_norm[0] / runs["mse"].gradient_norm[0]
    print("gradient norm ratio at the saturated start:", ratio)
    assert runs["ce"].test_accuracy[0] < 0.05  # confidently wrong
    assert ratio > 100
    assert runs["ce"].test_accuracy[-1] > 0.8
    assert runs["mse"].test_accuracy[-1] < 0.2


def test_training_is_deterministic_given_a_seed():
    X_train, X_test, y_train, y_test = learn.load_dataset("iris", seed=3)
    a = learn.train(X_train, y_train, X_test, y_test, model="mlp", epochs=5, batch_size=16, seed=7)
    b = learn.train(X_train, y_train, X_test, y_test, model="mlp", epochs=5, batch_size=16, seed=7)
    assert a.as_dict() == b.as_dict()


def test_bad_options():
    X_train, X_test, y_train, y_test = learn.load_dataset("wine")
    with pytest.raises(ce.InputError, match="logistic model is binary"):
        learn.train(X_train, y_train, X_test, y_test, model="logistic")
    with pytest.raises(ce.InputError, match="loss must be one of"):
        learn.train(X_train, y_train, X_test, y_test, loss="hinge")
    with pytest.raises(ce.InputError, match="dataset must be one of"):
        learn.load_dataset("mnist")


@pytest.mark.slow
def test_train_command_json_and_plot(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    plot = tmp_path / "curves.png"
    code = main(["train", "--dataset", "digits", "--epochs", "40", "--plot", str(plot), "--format", "json"])
    out, _ = capsys.readouterr()
    assert code == 0
    data = json.loads(out)
    assert data["epochs_to_target"]["ce"] < (data["epochs_to_target"]["mse"] or 10**9)
    assert len(data["history"]["ce"]["test_accuracy"]) == 41
    assert plot.stat().st_size > 10_000


def test_train_command_table(capsys):
    assert main(["train", "--dataset", "breast_cancer", "--model", "logistic", "--epochs", "10"]) == 0
    out, err = capsys.readouterr()
    assert "epochs to 90% test accuracy" in out
    assert "times smaller" in err
