"""Tests for nnviz.engine.initializers: every number is checked against torch as the reference."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from nnviz.engine.initializers import (
    ACTIVATIONS,
    BIAS_INITS,
    INITIALIZERS,
    TOO_LARGE_STD,
    TOO_SMALL_STD,
    InitParams,
    InitSpec,
    Theory,
    apply_init,
    fans,
    gain,
    theories,
    theory_for,
    validate,
)
from nnviz.errors import ConfigError

ALL_INITS = sorted(INITIALIZERS)
CONTINUOUS = ("uniform", "normal", "trunc_normal")


class SimpleCNN(nn.Module):
    """The tutorial's model: Conv2d(3, 16, 3, padding=1), BatchNorm, ReLU, Linear(4096, 10)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(16)
        self.fc = nn.Linear(16 * 16 * 16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Forward pass for 16x16 RGB inputs."""
        return self.fc(torch.relu(self.bn1(self.conv1(x))).flatten(1))


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Use one torch thread here: QR (orthogonal init) slows down badly on a busy shared CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _gen(seed: int) -> torch.Generator:
    """A CPU generator seeded with `seed`."""
    return torch.Generator().manual_seed(seed)


def _params(name: str) -> InitParams:
    """InitParams for `name` with non-default numbers so that each setting is exercised."""
    return InitParams(name=name, std=0.05, a=0.2, value=0.3)


def _check_sample(w: torch.Tensor, th: Theory, rel_tol: float | None = None) -> None:
    """Assert that the drawn tensor w follows theory th (std, mean, support)."""
    x = w.detach().double().flatten()
    n = x.numel()
    if th.kind == "point":
        assert torch.all(x == torch.tensor(th.mean, dtype=torch.float32).double())
        assert th.std == 0.0
        return
    if th.low is not None and th.high is not None:
        eps = 1e-6 * max(abs(th.low), abs(th.high))
        assert x.min().item() >= th.low - eps
        assert x.max().item() <= th.high + eps
    if n < 30:  # too few draws for statistics; the support check above is what we can do
        return
    sample_std = x.std(unbiased=False).item()
    # Relative sampling error of a std is about sqrt((kurtosis - 1) / (4 n)) <= 1/sqrt(2n).
    tol = rel_tol if rel_tol is not None else 5.0 / math.sqrt(2 * n)
    assert abs(sample_std - th.std) / th.std < tol, (sample_std, th.std, th.formula)
    assert abs(x.mean().item() - th.mean) < 5 * th.std / math.sqrt(n) + 1e-12


# ----------------------------------------------------------------------------------------------
# registry and validation


def test_registry_keys_and_specs() -> None:
    """All required initializers exist and their specs name real InitParams fields."""
    assert set(INITIALIZERS) == {
        "default", "xavier_uniform", "xavier_normal", "kaiming_uniform", "kaiming_normal",
        "orthogonal", "normal", "uniform", "trunc_normal", "zeros", "constant", "too_small",
        "too_large",
    }  # fmt: skip
    assert set(BIAS_INITS) == {"default", "zeros", "constant"}
    field_names = set(InitParams.__dataclass_fields__)
    for key, spec in {**INITIALIZERS, **{f"bias:{k}": v for k, v in BIAS_INITS.items()}}.items():
        assert isinstance(spec, InitSpec)
        assert key.removeprefix("bias:") == spec.name
        assert spec.label and spec.description
        assert set(spec.uses) <= field_names
    assert TOO_SMALL_STD == 1e-3 and TOO_LARGE_STD == 1.0
    assert ACTIVATIONS == ("relu", "leaky_relu", "tanh", "sigmoid", "gelu", "linear")
    assert "Xavier" not in INITIALIZERS["default"].description


def test_validate_rejects_unknown_names_listing_choices() -> None:
    """Unknown initializer/bias/mode names raise ConfigError listing the valid ones."""
    with pytest.raises(ConfigError) as exc:
        validate(InitParams(name="he"))
    for name in INITIALIZERS:
        assert repr(name) in str(exc.value)
    with pytest.raises(ConfigError) as exc:
        validate(InitParams(bias="ones"))
    for name in BIAS_INITS:
        assert repr(name) in str(exc.value)
    with pytest.raises(ConfigError, match="fan_out"):
        validate(InitParams(name="kaiming_normal", mode="fan_avg"))
    assert isinstance(exc.value, ValueError)


@pytest.mark.parametrize(
    "params",
    [
        InitParams(name="normal", std=0.0),
        InitParams(name="trunc_normal", std=-1.0),
        InitParams(name="uniform", a=0.0),
        InitParams(name="normal", std=math.nan),
        InitParams(name="uniform", a=math.inf),
        InitParams(name="constant", value=math.nan),
        InitParams(bias="constant", bias_value=-math.inf),
        InitParams(std="0.1"),  # type: ignore[arg-type]
    ],
)
def test_validate_rejects_bad_numbers(params: InitParams) -> None:
    """Non-positive std/a for the initializers that use them, and NaN/inf anywhere, are rejected."""
    with pytest.raises(ConfigError):
        validate(params)


def test_validate_accepts_good_params() -> None:
    """Every initializer with sensible settings validates; unused settings may be 0."""
    for name in INITIALIZERS:
        for bias in BIAS_INITS:
            validate(InitParams(name=name, bias=bias))
    validate(InitParams(name="xavier_uniform", std=0.0, a=0.0))


def test_activation_checked() -> None:
    """An unknown activation raises ConfigError listing the valid ones."""
    with pytest.raises(ConfigError, match="'relu'"):
        gain("swish")
    with pytest.raises(ConfigError):
        apply_init(nn.Linear(2, 2), InitParams(), "swish", _gen(0))
    with pytest.raises(ConfigError):
        theories(nn.Linear(2, 2), InitParams(), "swish")


# ----------------------------------------------------------------------------------------------
# fans and gains against torch


@pytest.mark.parametrize(
    "shape",
    [(1, 2), (256, 512), (10, 4096), (16, 3, 3, 3), (32, 16, 3, 3), (8, 4, 5), (4, 2, 3, 5, 7),
     (64, 1, 1, 1), (3, 3), (0, 5)],
)  # fmt: skip
def test_fans_match_torch(shape: tuple[int, ...]) -> None:
    """fans() equals torch.nn.init._calculate_fan_in_and_fan_out."""
    assert fans(shape) == nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))
    assert fans(list(shape)) == fans(torch.Size(shape))


def test_fans_conv_example_and_small_shapes() -> None:
    """Conv2d(3, 16, 3): fan_in = 3*3*3 = 27, fan_out = 16*3*3; < 2-D shapes raise ValueError."""
    assert fans(nn.Conv2d(3, 16, 3).weight.shape) == (27, 144)
    for shape in [(), (5,)]:
        with pytest.raises(ValueError):
            fans(shape)


def test_gain_matches_torch() -> None:
    """gain() equals calculate_gain; gelu is treated as relu."""
    for act in ("relu", "tanh", "sigmoid", "linear"):
        assert gain(act) == pytest.approx(nn.init.calculate_gain(act), rel=1e-12)
    for slope in (0.01, 0.2, 1.0):
        assert gain("leaky_relu", slope) == pytest.approx(
            nn.init.calculate_gain("leaky_relu", slope), rel=1e-12
        )
    assert gain("leaky_relu") == pytest.approx(math.sqrt(2 / (1 + 0.01**2)))
    assert gain("gelu") == pytest.approx(math.sqrt(2))
    assert gain("tanh") == pytest.approx(5 / 3)


# ----------------------------------------------------------------------------------------------
# the tutorial's numbers (and the facts it got wrong)


def test_simple_cnn_tutorial_numbers() -> None:
    """Default: 0.111 (conv1) and 0.00902 (fc); Kaiming normal (relu): 0.272 and 0.0221."""
    model = SimpleCNN()
    th = theories(model, InitParams(), "relu")
    assert th["conv1.weight"].std == pytest.approx(0.111, abs=5e-4)
    assert th["conv1.weight"].std == pytest.approx(1 / math.sqrt(81))
    assert th["fc.weight"].std == pytest.approx(0.00902, abs=5e-6)
    assert th["fc.weight"].std == pytest.approx(1 / math.sqrt(3 * 4096))
    assert "27" in th["conv1.weight"].formula and "0.111" in th["conv1.weight"].formula
    kn = theories(model, InitParams(name="kaiming_normal"), "relu")
    assert kn["conv1.weight"].std == pytest.approx(0.272, abs=5e-4)
    assert kn["conv1.weight"].std == pytest.approx(math.sqrt(2 / 27))
    assert kn["fc.weight"].std == pytest.approx(0.0221, abs=5e-5)
    assert kn["fc.weight"].std == pytest.approx(math.sqrt(2 / 4096))


def test_default_is_same_rule_for_linear_and_conv() -> None:
    """Torch's own Linear and Conv2d both draw U(±1/sqrt(fan_in)) weights and biases."""
    torch.manual_seed(0)
    for layer in (nn.Linear(512, 256), nn.Conv2d(16, 32, 3), nn.Conv2d(3, 16, 3)):
        fan_in, _ = fans(layer.weight.shape)
        bound = 1 / math.sqrt(fan_in)
        assert layer.weight.abs().max().item() <= bound
        assert layer.bias.abs().max().item() <= bound
        th = theory_for("weight", tuple(layer.weight.shape), type(layer).__name__, None,
                        InitParams(), "relu")  # fmt: skip
        assert th.kind == "uniform" and th.high == pytest.approx(bound)
        _check_sample(layer.weight, th)


def test_simple_cnn_batchnorm_is_point_mass_and_reset() -> None:
    """BatchNorm theory is weight = 1, bias = 0, and apply_init puts it back there."""
    model = SimpleCNN()
    with torch.no_grad():
        model.bn1.weight.fill_(3.0)
        model.bn1.bias.fill_(-2.0)
        model.bn1.running_mean.fill_(5.0)
    for name in ALL_INITS:
        th = theories(model, InitParams(name=name), "relu")
        assert th["bn1.weight"] == Theory(th["bn1.weight"].kind, 1.0, 0.0, 1.0, 1.0, None,
                                          th["bn1.weight"].formula)  # fmt: skip
        assert th["bn1.weight"].kind == "point" and th["bn1.bias"].kind == "point"
        assert th["bn1.bias"].mean == 0.0 and th["bn1.bias"].std == 0.0
        assert th["bn1.weight"].pdf(np.linspace(0, 2, 5)) is None
    apply_init(model, InitParams(name="too_large"), "relu", _gen(1))
    assert torch.all(model.bn1.weight == 1) and torch.all(model.bn1.bias == 0)
    assert torch.all(model.bn1.running_mean == 0)
    th = theories(model, InitParams(name="too_large"), "relu")
    for name, p in model.named_parameters():
        _check_sample(p, th[name])


# ----------------------------------------------------------------------------------------------
# every initializer: drawn tensors follow their theory


LARGE_CASES = [
    (name, act)
    for name in ALL_INITS
    for act in (ACTIVATIONS if INITIALIZERS[name].uses_activation else ("relu",))
]


@pytest.mark.parametrize(("name", "activation"), LARGE_CASES)
def test_theory_matches_large_layer(name: str, activation: str) -> None:
    """On Linear(1024, 512) (524k weights) the sample std is within 2% of theory; means match."""
    layer = nn.Linear(1024, 512, bias=False)
    init = _params(name)
    apply_init(layer, init, activation, _gen(123))
    th = theories(layer, init, activation)
    _check_sample(layer.weight, th["weight"], rel_tol=0.02)


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid"])
@pytest.mark.parametrize("name", ALL_INITS)
def test_theory_matches_layers(name: str, activation: str) -> None:
    """Linear(512, 256), Conv2d(16, 32, 3) and Linear(2, 1): samples follow the theory."""
    init = _params(name)
    for layer in (nn.Linear(512, 256), nn.Conv2d(16, 32, 3), nn.Linear(2, 1)):
        apply_init(layer, init, activation, _gen(7))
        th = theories(layer, init, activation)
        assert set(th) == {"weight", "bias"}
        _check_sample(layer.weight, th["weight"])
        _check_sample(layer.bias, th["bias"])
        if th["weight"].kind == "orthogonal":
            w = layer.weight.detach().double().flatten(1)
            g = gain(activation)
            rows, cols = w.shape
            small = w @ w.T if rows <= cols else w.T @ w
            assert torch.allclose(small, g * g * torch.eye(min(rows, cols)).double(), atol=1e-4)
            # sum of squares is exactly g^2 * min(rows, cols): element var g^2 / max(rows, cols)
            assert (w**2).mean().item() == pytest.approx(th["weight"].std ** 2, rel=1e-4)


@pytest.mark.parametrize("name", ALL_INITS)
def test_pdf_integrates_to_one(name: str) -> None:
    """Continuous theories have a density that integrates to 1; others have none."""
    for activation in ("relu", "tanh", "sigmoid"):
        th = theories(nn.Conv2d(16, 32, 3), _params(name), activation)["weight"]
        dens = th.pdf(np.linspace(-1, 1, 11))
        if th.kind not in CONTINUOUS:
            assert dens is None
            continue
        if th.low is not None:
            x = np.linspace(th.low, th.high, 200_001)
        else:
            x = np.linspace(th.mean - 12 * th.scale, th.mean + 12 * th.scale, 200_001)
        assert np.trapezoid(th.pdf(x), x) == pytest.approx(1.0, abs=1e-3)
        # variance of the density equals the reported std (checks the truncated-normal std)
        var = np.trapezoid((x - th.mean) ** 2 * th.pdf(x), x)
        assert math.sqrt(var) == pytest.approx(th.std, rel=1e-3)
        assert np.all(th.pdf(np.array([-1e3, 1e3])) < 1e-12)


@pytest.mark.parametrize("name", ["default", "xavier_normal", "trunc_normal", "too_small"])
def test_pdf_matches_histogram(name: str) -> None:
    """The density drawn over a histogram of a big layer's weights fits it."""
    layer = nn.Linear(1024, 512)
    apply_init(layer, _params(name), "relu", _gen(3))
    th = theories(layer, _params(name), "relu")["weight"]
    lo, hi = (th.low, th.high) if th.low is not None else (-3 * th.std, 3 * th.std)
    counts, edges = np.histogram(layer.weight.detach().numpy(), bins=30, range=(lo, hi))
    density = counts / (layer.weight.numel() * np.diff(edges))
    centers = (edges[:-1] + edges[1:]) / 2
    expected = th.pdf(centers)
    assert np.max(np.abs(density - expected)) < 0.05 * np.max(expected)


def test_trunc_normal_true_std() -> None:
    """trunc_normal_(std=s, a=-2s, b=2s) has std 0.8796*s, and torch's own draws agree."""
    s = 0.05
    th = theory_for("weight", (512, 1024), "Linear", None, InitParams("trunc_normal", std=s),
                    "relu")  # fmt: skip
    assert th.std == pytest.approx(0.87962566 * s, rel=1e-6)
    assert (th.low, th.high, th.scale) == pytest.approx((-2 * s, 2 * s, s))
    ref = nn.init.trunc_normal_(torch.empty(512, 1024), std=s, a=-2 * s, b=2 * s,
                                generator=_gen(0))  # fmt: skip
    _check_sample(ref, th, rel_tol=0.02)


def test_xavier_and_kaiming_formulas() -> None:
    """Xavier has no gain (Glorot & Bengio); Kaiming uses the activation's gain and the fan."""
    shape = (32, 16, 3, 3)
    fan_in, fan_out = 144, 288
    for act in ACTIVATIONS:
        g = gain(act)
        xu = theory_for("weight", shape, "Conv2d", None, InitParams("xavier_uniform"), act)
        assert xu.high == pytest.approx(math.sqrt(6 / (fan_in + fan_out)))
        xn = theory_for("weight", shape, "Conv2d", None, InitParams("xavier_normal"), act)
        assert xn.std == pytest.approx(math.sqrt(2 / (fan_in + fan_out)))
        for mode, fan in (("fan_in", fan_in), ("fan_out", fan_out)):
            ku = theory_for("weight", shape, "Conv2d", None, InitParams("kaiming_uniform", mode),
                            act)  # fmt: skip
            assert ku.high == pytest.approx(g * math.sqrt(3 / fan))
            kn = theory_for("weight", shape, "Conv2d", None, InitParams("kaiming_normal", mode),
                            act)  # fmt: skip
            assert kn.std == pytest.approx(g / math.sqrt(fan))


def test_kaiming_fan_out_and_leaky_slope_against_torch() -> None:
    """Kaiming fan_out and a custom leaky_relu slope draw exactly what torch's own calls draw."""
    layer = nn.Linear(1024, 256)
    init = InitParams("kaiming_normal", mode="fan_out", bias="zeros")
    apply_init(layer, init, "leaky_relu", _gen(5), leaky_slope=0.2)
    ref = nn.init.kaiming_normal_(torch.empty(256, 1024), a=0.2, mode="fan_out",
                                  nonlinearity="leaky_relu", generator=_gen(5))  # fmt: skip
    assert torch.equal(layer.weight, ref)
    th = theories(layer, init, "leaky_relu", leaky_slope=0.2)["weight"]
    assert th.std == pytest.approx(math.sqrt(2 / (1 + 0.2**2)) / math.sqrt(256))
    _check_sample(layer.weight, th)


def test_orthogonal_matches_torch() -> None:
    """Orthogonal init is torch's orthogonal_ with gain(activation), drawn from the generator."""
    layer = nn.Linear(300, 200)
    apply_init(layer, InitParams("orthogonal"), "tanh", _gen(9))
    ref = nn.init.orthogonal_(torch.empty(200, 300), gain=5 / 3, generator=_gen(9))
    assert torch.equal(layer.weight, ref)
    th = theories(layer, InitParams("orthogonal"), "tanh")["weight"]
    assert th.std == pytest.approx((5 / 3) / math.sqrt(300))
    assert th.pdf(np.zeros(3)) is None


# ----------------------------------------------------------------------------------------------
# default = PyTorch's reset_parameters()


@pytest.mark.parametrize(
    "make",
    [lambda: nn.Linear(512, 256), lambda: nn.Conv2d(16, 32, 3), lambda: nn.Linear(2, 1),
     lambda: nn.Conv1d(4, 8, 5), lambda: nn.Conv2d(3, 16, 3, padding=1)],
)  # fmt: skip
def test_default_reproduces_pytorch(make) -> None:
    """'default' draws exactly what a fresh torch layer draws from the same seed."""
    torch.manual_seed(11)
    ref = make()
    mine = make()
    apply_init(mine, InitParams(), "relu", _gen(11))
    assert torch.equal(mine.weight, ref.weight)
    assert torch.equal(mine.bias, ref.bias)
    bound = 1 / math.sqrt(fans(ref.weight.shape)[0])
    assert mine.weight.abs().max().item() <= bound
    th = theories(mine, InitParams(), "relu")
    for name, p in mine.named_parameters():
        _check_sample(p, th[name])
        assert th[name].high == pytest.approx(bound)


def test_default_on_channels_last_conv() -> None:
    """A channels_last conv gets the same values as a contiguous one (like torch's reset)."""
    a = nn.Conv2d(8, 16, 3)
    b = nn.Conv2d(8, 16, 3).to(memory_format=torch.channels_last)
    assert not b.weight.is_contiguous()
    for name in ("default", "orthogonal", "kaiming_normal"):
        apply_init(a, InitParams(name), "relu", _gen(2))
        apply_init(b, InitParams(name), "relu", _gen(2))
        assert torch.equal(a.weight, b.weight) and torch.equal(a.bias, b.bias)


# ----------------------------------------------------------------------------------------------
# biases


def test_bias_options_values_and_theories() -> None:
    """Bias default U(±1/sqrt(fan_in)) with the weight's fan_in; zeros; constant."""
    conv = nn.Conv2d(3, 16, 3)
    wshape = tuple(conv.weight.shape)
    th = theory_for("bias", (16,), "Conv2d", wshape, InitParams(name="zeros"), "relu")
    assert th.kind == "uniform"
    assert (th.low, th.high) == pytest.approx((-1 / math.sqrt(27), 1 / math.sqrt(27)))
    assert th.std == pytest.approx(1 / math.sqrt(3 * 27))
    assert "27" in th.formula

    big = nn.Linear(1024, 4000)
    apply_init(big, InitParams(bias="default"), "relu", _gen(4))
    tb = theories(big, InitParams(), "relu")["bias"]
    assert tb.std == pytest.approx(1 / math.sqrt(3 * 1024))
    _check_sample(big.bias, tb, rel_tol=0.05)

    apply_init(conv, InitParams(bias="zeros"), "relu", _gen(0))
    assert torch.all(conv.bias == 0)
    tz = theories(conv, InitParams(bias="zeros"), "relu")["bias"]
    assert (tz.kind, tz.mean, tz.std) == ("point", 0.0, 0.0)

    apply_init(conv, InitParams(bias="constant", bias_value=0.01), "relu", _gen(0))
    assert torch.all(conv.bias == torch.tensor(0.01))
    tc = theories(conv, InitParams(bias="constant", bias_value=0.01), "relu")["bias"]
    assert (tc.kind, tc.mean, tc.std) == ("point", 0.01, 0.0)
    _check_sample(conv.bias, tc)

    with pytest.raises(ValueError):
        theory_for("bias", (16,), "Conv2d", None, InitParams(), "relu")


def test_layers_without_bias_and_unknown_modules() -> None:
    """Bias-free layers work; parameters of modules we don't initialise get an 'unknown' theory."""
    model = nn.Sequential(nn.Linear(4, 8, bias=False), nn.LayerNorm(8), nn.Embedding(5, 3))
    emb_before = model[2].weight.clone()
    apply_init(model, InitParams("xavier_normal"), "tanh", _gen(0))
    assert torch.equal(model[2].weight, emb_before)
    th = theories(model, InitParams("xavier_normal"), "tanh")
    assert list(th) == [n for n, _ in model.named_parameters()]
    assert th["0.weight"].kind == "normal"
    assert (th["1.weight"].kind, th["1.weight"].mean) == ("point", 1.0)
    assert th["2.weight"].kind == "unknown" and th["2.weight"].pdf(np.zeros(2)) is None


# ----------------------------------------------------------------------------------------------
# generator isolation and determinism


def test_generator_isolation_and_determinism() -> None:
    """apply_init never touches the global RNG; same seed -> identical weights, new seed differs."""
    for name in ALL_INITS:
        init = _params(name)
        m1, m2, m3 = SimpleCNN(), SimpleCNN(), SimpleCNN()
        state = torch.get_rng_state()
        apply_init(m1, init, "relu", _gen(42))
        apply_init(m2, init, "relu", _gen(42))
        apply_init(m3, init, "relu", _gen(43))
        assert torch.equal(torch.get_rng_state(), state), name
        p1, p2, p3 = (dict(m.named_parameters()) for m in (m1, m2, m3))
        for key in p1:
            assert torch.equal(p1[key], p2[key]), (name, key)
        random_weights = name not in ("zeros", "constant")
        assert torch.equal(p1["fc.weight"], p3["fc.weight"]) != random_weights, name
        assert not torch.equal(p1["fc.bias"], p3["fc.bias"])  # default bias is random


def test_visit_order_is_named_modules_order() -> None:
    """Layers are drawn in named_modules() order from one generator stream."""
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    apply_init(model, InitParams("normal", std=1.0, bias="zeros"), "relu", _gen(8))
    g = _gen(8)
    first = torch.empty(4, 3).normal_(0, 1, generator=g)
    second = torch.empty(2, 4).normal_(0, 1, generator=g)
    assert torch.equal(model[0].weight, first) and torch.equal(model[1].weight, second)


# ----------------------------------------------------------------------------------------------
# Theory serialisation


def test_theory_json_round_trip() -> None:
    """to_dict/from_dict survive JSON for every kind, including 'unknown' (mean NaN -> None)."""
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Embedding(3, 2))
    for name in ALL_INITS:
        for th in theories(model, _params(name), "tanh").values():
            d = json.loads(json.dumps(th.to_dict(), allow_nan=False))
            back = Theory.from_dict(d)
            if th.kind == "unknown":
                assert d["mean"] is None and math.isnan(back.mean)
                assert back.kind == "unknown" and back.formula == th.formula
            else:
                assert back == th
    with pytest.raises(ConfigError):
        Theory.from_dict({"mean": 0.0})


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cpu_generator_on_gpu_model_gives_cpu_numbers() -> None:
    """A CPU generator initialises a CUDA model with exactly the numbers a CPU model gets."""
    for name in ALL_INITS:
        cpu, gpu = SimpleCNN(), SimpleCNN().cuda()
        apply_init(cpu, _params(name), "relu", _gen(5))
        apply_init(gpu, _params(name), "relu", _gen(5))
        for (key, a), (_, b) in zip(cpu.named_parameters(), gpu.named_parameters(), strict=True):
            assert torch.equal(a, b.cpu()), (name, key)
