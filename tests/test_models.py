"""Models: the tutorial's two models exactly, shapes, and data-fit checks."""

import pytest
import torch

from nnviz.config import RunConfig
from nnviz.engine.models import CNN, MLP, SimpleCNN, SimpleNet, build_model, output_size
from nnviz.errors import ConfigError


def test_simple_cnn_is_the_tutorials_model():
    m = SimpleCNN()
    shapes = {n: tuple(p.shape) for n, p in m.named_parameters()}
    assert shapes == {"conv1.weight": (16, 3, 3, 3), "conv1.bias": (16,),
                      "fc.weight": (10, 4096), "fc.bias": (10,)}
    assert m(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


def test_simple_net_is_one_linear():
    m = SimpleNet()
    assert [n for n, _ in m.named_parameters()] == ["linear.weight", "linear.bias"]
    assert m(torch.zeros(5, 2)).shape == (5, 1)


@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "tanh", "sigmoid", "gelu"])
def test_mlp_depth_and_activation(activation):
    m = MLP(2, 3, depth=30, width=8, activation=activation, dropout=0.1)
    linears = [n for n, mod in m.named_modules() if isinstance(mod, torch.nn.Linear)]
    assert len(linears) == 31
    assert m(torch.randn(4, 2)).shape == (4, 3)


@pytest.mark.parametrize(("shape", "depth"), [((3, 32, 32), 2), ((1, 28, 28), 4)])
def test_cnn_blocks(shape, depth):
    m = CNN(shape, 10, depth=depth, width=4, activation="relu", batch_norm=True, dropout=0.2)
    assert m(torch.randn(2, *shape)).shape == (2, 10)
    assert sum(isinstance(x, torch.nn.BatchNorm2d) for x in m.modules()) == depth


def test_models_reject_data_that_does_not_fit():
    with pytest.raises(ConfigError, match="32×32 RGB"):
        build_model(RunConfig(model="simple_cnn", dataset="shapes28"), (1, 28, 28), 10,
                    "classification", "cross_entropy")
    with pytest.raises(ConfigError, match="2 input features"):
        build_model(RunConfig(model="simple_net", dataset="shapes32"), (3, 32, 32), 10,
                    "classification", "cross_entropy")
    with pytest.raises(ConfigError, match="images"):
        build_model(RunConfig(model="cnn", dataset="moons"), (2,), 2, "classification",
                    "cross_entropy")


def test_output_size():
    assert output_size("regression", 0, "mse") == 1
    assert output_size("classification", 2, "bce") == 1
    assert output_size("classification", 10, "cross_entropy") == 10
