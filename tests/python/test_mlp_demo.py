"""The MLP demo, short: three epochs on each device learn the digits (the loss falls, the test
accuracy passes 90%), and the command line runs."""

import io

from pocaflow.demos import mlp


def test_mlp_learns_the_digits(xdev):
    out = io.StringIO()
    r = mlp.train(xdev, epochs=3, out=out)
    assert len(r["losses"]) == 3 and r["losses"][-1] < 0.5 * r["losses"][0], r["losses"]
    assert r["test_accuracy"] >= 0.9, r
    assert "epoch   3" in out.getvalue() and "loss" in out.getvalue()


def test_mlp_adam(xdev):
    r = mlp.train(xdev, epochs=2, optimizer="adam", out=io.StringIO())
    assert r["losses"][-1] < r["losses"][0] and r["test_accuracy"] >= 0.85, r
